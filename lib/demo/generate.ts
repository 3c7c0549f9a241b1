import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Deterministic demo collection in BEIR layout: multi-paragraph documents about a few topics,
 * queries written from one document's distinctive facts, and graded qrels. Small enough for a
 * CPU demo, structured enough that neighbour passages share vocabulary (what CoT-MAE exploits)
 * and that lexical and dense retrievers can both do better than chance.
 */

export interface DemoCollectionOptions {
  documents: number;
  queriesPerDocument: number;
  seed: number;
}

export const DEFAULT_DEMO_OPTIONS: DemoCollectionOptions = {
  documents: 160,
  queriesPerDocument: 1,
  seed: 13,
};

interface Topic {
  name: string;
  nouns: string[];
  verbs: string[];
  adjectives: string[];
}

const TOPICS: Topic[] = [
  {
    name: 'glaciers',
    nouns: ['glacier', 'ice sheet', 'moraine', 'crevasse', 'meltwater', 'firn', 'ablation zone', 'icefall'],
    verbs: ['carves', 'retreats across', 'deposits', 'feeds', 'grinds', 'advances over'],
    adjectives: ['alpine', 'polar', 'retreating', 'temperate', 'debris-covered'],
  },
  {
    name: 'bread baking',
    nouns: [
      'sourdough starter',
      'gluten network',
      'crumb',
      'crust',
      'proofing basket',
      'levain',
      'hydration',
    ],
    verbs: ['ferments', 'strengthens', 'rises in', 'browns', 'develops', 'tightens'],
    adjectives: ['wholemeal', 'open', 'sour', 'crisp', 'slow-fermented'],
  },
  {
    name: 'jet engines',
    nouns: ['compressor', 'turbine blade', 'combustor', 'bypass duct', 'nozzle', 'fan stage', 'spool'],
    verbs: ['compresses', 'drives', 'ignites', 'cools', 'accelerates', 'bleeds air from'],
    adjectives: ['high-bypass', 'axial', 'supersonic', 'afterburning', 'geared'],
  },
  {
    name: 'coral reefs',
    nouns: ['polyp', 'zooxanthellae', 'reef crest', 'lagoon', 'atoll', 'bleaching event', 'parrotfish'],
    verbs: ['calcifies', 'shelters', 'expels', 'grazes on', 'colonises', 'recovers from'],
    adjectives: ['fringing', 'tropical', 'bleached', 'shallow', 'mesophotic'],
  },
  {
    name: 'medieval castles',
    nouns: ['keep', 'curtain wall', 'moat', 'portcullis', 'bailey', 'gatehouse', 'arrow slit'],
    verbs: ['guards', 'encloses', 'overlooks', 'defends', 'surrounds', 'withstands'],
    adjectives: ['motte-and-bailey', 'concentric', 'fortified', 'ruined', 'stone'],
  },
  {
    name: 'beekeeping',
    nouns: ['hive', 'queen', 'brood comb', 'nectar flow', 'smoker', 'swarm', 'propolis'],
    verbs: ['forages', 'seals', 'swarms from', 'stores', 'inspects', 'pollinates'],
    adjectives: ['colony', 'wild', 'overwintering', 'docile', 'productive'],
  },
  {
    name: 'volcanoes',
    nouns: ['magma chamber', 'caldera', 'lava flow', 'pyroclastic surge', 'fumarole', 'ash plume', 'vent'],
    verbs: ['erupts through', 'collapses into', 'vents', 'buries', 'inflates', 'degasses'],
    adjectives: ['basaltic', 'dormant', 'explosive', 'shield', 'stratovolcanic'],
  },
  {
    name: 'chess openings',
    nouns: ['gambit', 'pawn structure', 'bishop pair', 'fianchetto', 'castling', 'centre', 'tempo'],
    verbs: ['sacrifices', 'controls', 'develops', 'pins', 'undermines', 'blockades'],
    adjectives: ['hypermodern', 'positional', 'sharp', 'classical', 'closed'],
  },
];

const NAMES = [
  'Avery',
  'Lindqvist',
  'Okafor',
  'Haddad',
  'Moreau',
  'Tanaka',
  'Kowalski',
  'Brennan',
  'Ruiz',
  'Adler',
];
const PLACES = [
  'Norvik',
  'Calder Bay',
  'Esterhold',
  'Mirefield',
  'Quillon',
  'Dunmarrow',
  'Tessaly',
  'Orwen Vale',
];

/** mulberry32: a tiny seeded PRNG so the collection is byte-identical on every machine. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)] as T;
}

interface DemoDocument {
  id: string;
  title: string;
  paragraphs: string[];
  /** A (subject, fact) pair unique to this document, used to write its query. */
  keyFact: { noun: string; year: number; person: string; place: string };
}

function sentence(rand: () => number, topic: Topic): string {
  const subject = `${pick(rand, topic.adjectives)} ${pick(rand, topic.nouns)}`;
  const object = pick(rand, topic.nouns);
  const tail =
    rand() < 0.5
      ? ` near ${pick(rand, PLACES)}`
      : ` during the ${pick(rand, ['spring', 'winter', 'dry season', 'survey'])}`;
  return `The ${subject} ${pick(rand, topic.verbs)} the ${object}${tail}.`;
}

function makeDocument(rand: () => number, index: number): DemoDocument {
  const topic = TOPICS[index % TOPICS.length] as Topic;
  const keyFact = {
    noun: pick(rand, topic.nouns),
    year: 1850 + Math.floor(rand() * 170),
    person: pick(rand, NAMES),
    place: pick(rand, PLACES),
  };
  const paragraphs: string[] = [];
  const count = 3 + Math.floor(rand() * 5);
  for (let p = 0; p < count; p++) {
    const sentences: string[] = [];
    const n = 3 + Math.floor(rand() * 5);
    for (let s = 0; s < n; s++) sentences.push(sentence(rand, topic));
    paragraphs.push(sentences.join(' '));
  }
  // The key fact sits in one paragraph only, so the query has one best passage in the document.
  const factAt = Math.floor(rand() * count);
  paragraphs[factAt] =
    `In ${keyFact.year}, ${keyFact.person} recorded the ${keyFact.noun} at ${keyFact.place} for the first time. ${paragraphs[factAt]}`;
  return {
    id: `demo-${String(index).padStart(4, '0')}`,
    title: `${topic.name} notes ${index}`,
    paragraphs,
    keyFact,
  };
}

function makeQuery(rand: () => number, doc: DemoDocument, k: number): string {
  const f = doc.keyFact;
  const forms = [
    `who recorded the ${f.noun} at ${f.place} in ${f.year}`,
    `when did ${f.person} first record the ${f.noun} at ${f.place}`,
    `${f.person} ${f.noun} ${f.place} ${f.year} record`,
  ];
  return forms[(k + Math.floor(rand() * forms.length)) % forms.length] as string;
}

/** Writes corpus.jsonl, queries.jsonl and qrels/test.tsv into `dir`; returns the counts. */
export async function writeDemoCollection(
  dir: string,
  options: DemoCollectionOptions = DEFAULT_DEMO_OPTIONS,
): Promise<{ documents: number; queries: number; qrels: number }> {
  const rand = prng(options.seed);
  const docs = Array.from({ length: options.documents }, (_, i) => makeDocument(rand, i));
  const corpus = docs.map((d) =>
    JSON.stringify({ _id: d.id, title: d.title, text: d.paragraphs.join('\n') }),
  );
  const queries: string[] = [];
  const qrels = ['query-id\tcorpus-id\tscore'];
  for (const doc of docs) {
    for (let k = 0; k < options.queriesPerDocument; k++) {
      const qid = `q-${doc.id}-${k}`;
      queries.push(JSON.stringify({ _id: qid, text: makeQuery(rand, doc, k) }));
      qrels.push(`${qid}\t${doc.id}\t1`);
    }
  }
  await mkdir(join(dir, 'qrels'), { recursive: true });
  await writeFile(join(dir, 'corpus.jsonl'), `${corpus.join('\n')}\n`);
  await writeFile(join(dir, 'queries.jsonl'), `${queries.join('\n')}\n`);
  await writeFile(join(dir, 'qrels', 'test.tsv'), `${qrels.join('\n')}\n`);
  await writeFile(
    join(dir, 'README.md'),
    `# cotmae demo collection\n\nGenerated deterministically by lib/demo/generate.ts (seed ${options.seed}): ${docs.length} documents, ${queries.length} queries.\n`,
  );
  return { documents: docs.length, queries: queries.length, qrels: qrels.length - 1 };
}
