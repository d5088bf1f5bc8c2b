/**
 * A strict JSON parser for safetensors headers. JSON.parse is not used because the format needs
 * what it cannot give: duplicate keys are rejected (the spec forbids them; JSON.parse keeps the
 * last silently), integers above 2^53 are an error instead of a rounded number, nesting depth is
 * bounded (no stack overflow from `[[[[...`), and objects are Maps, so a key like `__proto__`
 * is plain data. Grammar is RFC 8259; strings must be valid Unicode, as serde_json requires.
 */

/** A number written with a fraction or an exponent: never valid where safetensors wants an integer. */
export class JsonFloat {
  constructor(readonly text: string) {}
}

export type JsonValue = null | boolean | string | number | JsonFloat | JsonValue[] | Map<string, JsonValue>;

/** serde_json's recursion limit; real headers nest three levels deep. */
const MAX_DEPTH = 128;

export class JsonError extends Error {}

/** Parses `text` as one JSON value followed only by whitespace. Throws JsonError naming the offset. */
export function parseJson(text: string): JsonValue {
  const p = new Parser(text);
  p.ws();
  const v = p.value(0);
  p.ws();
  if (p.i < text.length) p.fail('unexpected data after the JSON value');
  return v;
}

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

class Parser {
  i = 0;
  constructor(private readonly s: string) {}

  fail(what: string): never {
    throw new JsonError(`${what} at character ${this.i}`);
  }

  ws(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      this.i++;
    }
  }

  value(depth: number): JsonValue {
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH} levels`);
    const c = this.s[this.i];
    switch (c) {
      case '{': return this.object(depth);
      case '[': return this.array(depth);
      case '"': return this.string();
      case 't': return this.literal('true', true);
      case 'f': return this.literal('false', false);
      case 'n': return this.literal('null', null);
      case undefined: return this.fail('unexpected end of JSON');
      default:
        if (c === '-' || (c >= '0' && c <= '9')) return this.number();
        return this.fail(`unexpected character ${JSON.stringify(c)}`);
    }
  }

  private literal<T>(word: string, v: T): T {
    if (!this.s.startsWith(word, this.i)) this.fail('invalid literal');
    this.i += word.length;
    return v;
  }

  private object(depth: number): Map<string, JsonValue> {
    const out = new Map<string, JsonValue>();
    this.i++;
    this.ws();
    if (this.s[this.i] === '}') { this.i++; return out; }
    for (;;) {
      if (this.s[this.i] !== '"') this.fail('expected a string key');
      const keyAt = this.i;
      const key = this.string();
      if (out.has(key)) { this.i = keyAt; this.fail(`duplicate key ${JSON.stringify(key)}`); }
      this.ws();
      if (this.s[this.i] !== ':') this.fail("expected ':'");
      this.i++;
      this.ws();
      out.set(key, this.value(depth + 1));
      this.ws();
      const c = this.s[this.i++];
      if (c === '}') return out;
      if (c !== ',') { this.i--; this.fail("expected ',' or '}'"); }
      this.ws();
    }
  }

  private array(depth: number): JsonValue[] {
    const out: JsonValue[] = [];
    this.i++;
    this.ws();
    if (this.s[this.i] === ']') { this.i++; return out; }
    for (;;) {
      out.push(this.value(depth + 1));
      this.ws();
      const c = this.s[this.i++];
      if (c === ']') return out;
      if (c !== ',') { this.i--; this.fail("expected ',' or ']'"); }
      this.ws();
    }
  }

  private string(): string {
    const s = this.s;
    this.i++;
    let out = '';
    let run = this.i;
    for (;;) {
      if (this.i >= s.length) this.fail('unterminated string');
      const c = s.charCodeAt(this.i);
      if (c === 0x22) break;
      if (c < 0x20) this.fail('unescaped control character in string');
      if (c !== 0x5c) { this.i++; continue; }
      out += s.slice(run, this.i);
      const e = s[this.i + 1];
      if (e === 'u') {
        out += this.unicodeEscape();
      } else {
        const ch = e === undefined ? undefined : ESCAPES[e];
        if (ch === undefined) this.fail('invalid escape in string');
        out += ch;
        this.i += 2;
      }
      run = this.i;
    }
    out += s.slice(run, this.i);
    this.i++;
    return out;
  }

  /** A \u escape of four hex digits, pairing surrogates; a lone surrogate is invalid Unicode and an error. */
  private unicodeEscape(): string {
    const hi = this.hex4(this.i + 2);
    this.i += 6;
    if (hi >= 0xdc00 && hi <= 0xdfff) this.fail('lone low surrogate in \\u escape');
    if (hi < 0xd800 || hi > 0xdbff) return String.fromCharCode(hi);
    if (this.s[this.i] !== '\\' || this.s[this.i + 1] !== 'u') this.fail('lone high surrogate in \\u escape');
    const lo = this.hex4(this.i + 2);
    if (lo < 0xdc00 || lo > 0xdfff) this.fail('high surrogate not followed by a low surrogate');
    this.i += 6;
    return String.fromCharCode(hi, lo);
  }

  private hex4(at: number): number {
    const h = this.s.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) { this.i = at; this.fail('invalid \\u escape'); }
    return parseInt(h, 16);
  }

  private number(): number | JsonFloat {
    const m = /^-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(this.s.slice(this.i, this.i + 400));
    if (!m) this.fail('invalid number');
    const text = m[0];
    if (text.length === 400) this.fail('number literal too long');
    if (m[1] !== undefined || m[2] !== undefined) { this.i += text.length; return new JsonFloat(text); }
    const v = Number(text);
    if (!Number.isSafeInteger(v)) this.fail(`integer ${text} is beyond 2^53`);
    this.i += text.length;
    return v === 0 ? 0 : v; // "-0" is 0
  }
}
