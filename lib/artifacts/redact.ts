/**
 * Keeps credentials out of error messages and logs. Artifact locations are URIs, and people do paste
 * `s3://KEY:SECRET@bucket/...` or `https://user:token@host/...` into settings; every error message that
 * lib/artifacts builds from a location goes through redactUri().
 */

/** A URI scheme followed by `//`, as it starts a URI with an authority. */
const SCHEME = /[A-Za-z][A-Za-z0-9+.-]*:\/\//g;
/** Where a URI embedded in free text ends. */
const URI_END = /[\s"'<>`]/;
/** Presigned-URL and similar credential query parameters. */
const SECRET_PARAMS =
  /([?&](?:X-Amz-Credential|X-Amz-Signature|X-Amz-Security-Token|AWSAccessKeyId|Signature|sig|token|access_token|password|secret)=)[^&#\s"'<>`]*/gi;

/**
 * The length of the userinfo (`user:password`) at the start of `rest` (the text after `scheme://`), or -1
 * when there is none. A secret may itself contain '/' (AWS secret keys do), so "the text before the first '@'
 * has no '/'" is not enough: it is userinfo when it has no '/', or when it has a ':' before its first '/'
 * that is not followed by a port number.
 */
function userinfoLength(rest: string): number {
  const at = rest.indexOf('@');
  if (at < 0) return -1;
  const head = rest.slice(0, at);
  const slash = head.indexOf('/');
  if (slash < 0) return at;
  const colon = head.indexOf(':');
  if (colon < 0 || colon > slash) return -1;
  if (/^\d+$/.test(head.slice(colon + 1, slash))) return -1; // host:port/path@... is not userinfo
  return at;
}

/**
 * Replaces credentials in every URI inside `text` with `***`: `s3://KEY:SECRET@bucket/p` →
 * `s3://***@bucket/p`, `https://user:pass@host/x` → `https://***@host/x`; credential query parameters
 * (`X-Amz-Signature=...`, `token=...`) become `X-Amz-Signature=***`. Text without credentials is unchanged.
 */
export function redactUri(text: string): string {
  if (typeof text !== 'string' || !text.includes('://')) return text;
  let out = '';
  let last = 0;
  SCHEME.lastIndex = 0;
  for (let m = SCHEME.exec(text); m !== null; m = SCHEME.exec(text)) {
    const start = m.index + m[0].length;
    const endMatch = URI_END.exec(text.slice(start));
    const end = endMatch ? start + endMatch.index : text.length;
    const uri = text.slice(start, end);
    const info = userinfoLength(uri);
    out += text.slice(last, start);
    out += (info >= 0 ? `***${uri.slice(info)}` : uri).replace(SECRET_PARAMS, '$1***');
    last = end;
    SCHEME.lastIndex = end;
  }
  return out + text.slice(last);
}
