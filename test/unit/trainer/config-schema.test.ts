/**
 * Trainer configs validated against the committed schema (lib/trainer/schemas/pretrain.json, the output of
 * `python -m cotmae_trainer schema pretrain`): every problem at once, each naming its full dotted key, with
 * the trainer's own messages.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  editDistance,
  SCHEMA_FORMAT,
  suggest,
  trainerConfigDefaults,
  trainerConfigSchema,
  validateTrainerConfig,
} from '../../../lib/trainer/config-schema';

const TINY = { hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 64 };
const VALID = { model_config: TINY, max_steps: 12, batch_size: 4, lr: 1e-3 };

describe('validateTrainerConfig', () => {
  it('accepts a valid config', () => {
    assert.deepEqual(validateTrainerConfig('pretrain', VALID), []);
    assert.deepEqual(
      validateTrainerConfig('pretrain', { model_init: '/models/bert-base', device: 'cuda' }),
      [],
    );
  });

  it('accepts integers for numbers and null for optional keys', () => {
    const config = { model_init: '/m', model_config: null, lr: 1, loss_weights: { ar: 0 } };
    assert.deepEqual(validateTrainerConfig('pretrain', config), []);
  });

  it('names an unknown key and suggests the known one', () => {
    assert.deepEqual(validateTrainerConfig('pretrain', { ...VALID, learning_rate: 1e-4 }), [
      'pretrain.learning_rate: unknown key (did you mean lr?)',
    ]);
    assert.deepEqual(validateTrainerConfig('pretrain', { ...VALID, max_step: 5, optimizer: 'adamw' }), [
      'pretrain.max_step: unknown key (did you mean max_steps?)',
      'pretrain.optimizer: unknown key',
    ]);
  });

  it('rejects a wrong type with the value it got', () => {
    assert.deepEqual(validateTrainerConfig('pretrain', { ...VALID, max_steps: 'sixty' }), [
      'pretrain.max_steps: must be an integer >= 1, got "sixty"',
    ]);
    assert.deepEqual(validateTrainerConfig('pretrain', { ...VALID, batch_size: 64.5, bf16: 1 }), [
      'pretrain.batch_size: must be an integer >= 1, got 64.5',
      'pretrain.bf16: must be a boolean, got 1',
    ]);
  });

  it('rejects out-of-range values at the bounds the trainer enforces', () => {
    const problems = (extra: object) => validateTrainerConfig('pretrain', { ...VALID, ...extra });
    assert.deepEqual(problems({ encoder_mask_rate: 1.5 }), [
      'pretrain.encoder_mask_rate: must be a number in (0, 1), got 1.5',
    ]);
    assert.deepEqual(problems({ lr: 0 }), ['pretrain.lr: must be a number > 0, got 0']);
    assert.deepEqual(problems({ warmup_ratio: 0, max_grad_norm: 0, weight_decay: 0 }), []);
    assert.deepEqual(problems({ warmup_ratio: 1 }), [
      'pretrain.warmup_ratio: must be a number in [0, 1), got 1',
    ]);
    assert.deepEqual(problems({ max_steps: 0 }), ['pretrain.max_steps: must be an integer >= 1, got 0']);
  });

  it('rejects a value outside an enum, listing the allowed ones', () => {
    assert.deepEqual(
      validateTrainerConfig('pretrain', { ...VALID, sparse_projection: 'mlp', device: 'tpu' }),
      [
        'pretrain.sparse_projection: must be one of "embedding", "linear", got "mlp"',
        'pretrain.device: must be one of "auto", "cpu", "cuda", got "tpu"',
      ],
    );
  });

  it('checks nested keys under their full dotted key', () => {
    const activations =
      '"gelu_fast", "gelu_pytorch_tanh", "gelu_accurate", "quick_gelu", "relu", "relu6", "silu", "swish", "mish", "tanh", "sigmoid", "leaky_relu", "linear"';
    const config = {
      ...VALID,
      model_config: { ...TINY, n_layers: 2, hidden_act: 'gelu2', hidden_dropout_prob: 1 },
      loss_weights: { mlm: -1, contrastive: 1 },
    };
    assert.deepEqual(validateTrainerConfig('pretrain', config), [
      'pretrain.model_config.n_layers: unknown key (did you mean num_hidden_layers?)',
      `pretrain.model_config.hidden_act: must be one of "gelu", "gelu_new", ${activations}, got "gelu2"`,
      'pretrain.model_config.hidden_dropout_prob: must be a number in [0, 1), got 1',
      'pretrain.loss_weights.mlm: must be a number >= 0, got -1',
      'pretrain.loss_weights.contrastive: unknown key',
    ]);
  });

  it('reports broken cross-key rules with the values involved', () => {
    assert.deepEqual(validateTrainerConfig('pretrain', { max_steps: 10 }), [
      'pretrain.model_init: exactly one of model_init and model_config must be set (got model_init=null, model_config=null)',
    ]);
    assert.deepEqual(validateTrainerConfig('pretrain', { ...VALID, model_init: '/m' }), [
      'pretrain.model_init: exactly one of model_init and model_config must be set (got model_init="/m", model_config={...})',
    ]);
    assert.deepEqual(validateTrainerConfig('pretrain', { ...VALID, batch_size: 10, grad_accum: 4 }), [
      'pretrain.batch_size: batch_size must be divisible by grad_accum (got batch_size=10, grad_accum=4)',
    ]);
    assert.deepEqual(
      validateTrainerConfig('pretrain', {
        ...VALID,
        model_config: { hidden_size: 30 },
        loss_weights: { mlm: 0, ae: 0, ar: 0 },
      }),
      [
        'pretrain.model_config.hidden_size: hidden_size must be divisible by num_attention_heads (got hidden_size=30, num_attention_heads=12)',
        'pretrain.loss_weights: at least one weight must be > 0 (got mlm=0, ae=0, ar=0)',
      ],
    );
  });

  it('skips a rule whose keys already have a problem, not one whose object has a problem inside', () => {
    assert.deepEqual(validateTrainerConfig('pretrain', { ...VALID, grad_accum: 0 }), [
      'pretrain.grad_accum: must be an integer >= 1, got 0',
    ]);
    assert.deepEqual(validateTrainerConfig('pretrain', { model_init: '/m', model_config: { layers: 2 } }), [
      'pretrain.model_config.layers: unknown key (did you mean num_hidden_layers?)',
      'pretrain.model_init: exactly one of model_init and model_config must be set (got model_init="/m", model_config={...})',
    ]);
  });

  it('reports several problems together, in key order, then the rules', () => {
    const config = {
      learning_rate: 1e-4,
      max_steps: 'sixty',
      model_config: { ...TINY, vocab_size: 0 },
      encoder_mask_rate: 1.5,
      batch_size: 10,
      grad_accum: 4,
    };
    assert.deepEqual(validateTrainerConfig('pretrain', config, 'stages.pretrain'), [
      'stages.pretrain.learning_rate: unknown key (did you mean lr?)',
      'stages.pretrain.max_steps: must be an integer >= 1, got "sixty"',
      'stages.pretrain.model_config.vocab_size: must be an integer >= 1 or null, got 0',
      'stages.pretrain.encoder_mask_rate: must be a number in (0, 1), got 1.5',
      'stages.pretrain.batch_size: batch_size must be divisible by grad_accum (got batch_size=10, grad_accum=4)',
    ]);
  });

  it('rejects a config or nested value that is not an object', () => {
    assert.deepEqual(validateTrainerConfig('pretrain', [1]), ['pretrain: must be an object, got [1]']);
    assert.deepEqual(validateTrainerConfig('pretrain', null, ''), ['config: must be an object, got null']);
    assert.deepEqual(validateTrainerConfig('pretrain', { ...VALID, loss_weights: 3 }), [
      'pretrain.loss_weights: must be an object, got 3',
    ]);
  });

  it('ignores undefined properties, which JSON drops', () => {
    assert.deepEqual(
      validateTrainerConfig('pretrain', { ...VALID, model_init: undefined, lr: undefined }),
      [],
    );
  });
});

describe('trainerConfigDefaults', () => {
  it('returns every key with the trainer defaults, nested objects included, as a fresh copy', () => {
    const defaults = trainerConfigDefaults('pretrain');
    assert.equal(defaults.max_steps, 100000);
    assert.equal(defaults.lr, 1e-4);
    assert.equal(defaults.sparse_projection, 'embedding');
    assert.equal(defaults.model_init, null);
    assert.deepEqual(defaults.loss_weights, { mlm: 1, ae: 1, ar: 1 });
    assert.deepEqual(Object.keys(defaults), Object.keys(trainerConfigSchema('pretrain').keys));
    (defaults.loss_weights as Record<string, number>).mlm = 5;
    assert.deepEqual(trainerConfigDefaults('pretrain').loss_weights, { mlm: 1, ae: 1, ar: 1 });
  });

  it('is a valid config once a model source is set', () => {
    const config = { ...trainerConfigDefaults('pretrain'), model_config: TINY };
    assert.deepEqual(validateTrainerConfig('pretrain', config), []);
  });
});

describe('trainerConfigSchema', () => {
  it('is the committed schema in the expected format, with only rule kinds this file evaluates', () => {
    const schema = trainerConfigSchema('pretrain');
    assert.equal(schema.format, SCHEMA_FORMAT);
    assert.equal(schema.command, 'pretrain');
    const kinds = new Set<string>();
    const walk = (s: { keys?: Record<string, unknown>; rules?: { kind: string }[] }) => {
      for (const rule of s.rules ?? []) kinds.add(rule.kind);
      for (const key of Object.values(s.keys ?? {})) walk(key as typeof s);
    };
    walk(schema);
    assert.deepEqual([...kinds].sort(), ['any_positive', 'divisible', 'exactly_one_of']);
  });
});

describe('suggest', () => {
  it('prefers an alias, then the closest key within a third of its length', () => {
    const keys = trainerConfigSchema('pretrain').keys;
    assert.equal(suggest('gradient_accumulation_steps', keys), 'grad_accum');
    assert.equal(suggest('BatchSize', keys), 'batch_size');
    assert.equal(suggest('seeds', keys), 'seed');
    assert.equal(suggest('scheduler', keys), undefined);
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(editDistance('', 'abc'), 3);
  });
});
