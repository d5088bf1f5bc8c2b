/**
 * A minimal PNG encoder (8-bit RGBA, one IDAT) and a validating reader, on node:zlib alone: the
 * plot is the only image the CLI writes, and a plotting or image dependency would be heavier than
 * the format (PNG spec, ISO/IEC 15948: signature, IHDR, IDAT, IEND, each chunk CRC-32'd).
 */
import { deflateSync, inflateSync } from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO 3309, the polynomial PNG and zlib's crc32 use). */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** Encodes width×height RGBA pixels (row-major, 4 bytes each) as a PNG file. */
export function encodePng(width: number, height: number, rgba: Uint8Array): Buffer {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Error(`encodePng: width and height must be positive integers, got ${width}x${height}`);
  }
  if (rgba.length !== width * height * 4) {
    throw new Error(`encodePng: rgba has ${rgba.length} bytes, a ${width}x${height} RGBA image needs ${width * height * 4}`);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // colour type: RGBA
  // compression 0 (deflate), filter method 0, interlace 0: all zero bytes.
  const stride = width * 4;
  const raw = Buffer.alloc(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    // Filter type 1 ("Sub"): a plot is mostly flat colour, so left-differences are mostly zero
    // and deflate shrinks them far better than the raw bytes.
    const o = y * (stride + 1);
    raw[o] = 1;
    for (let x = 0; x < stride; x++) {
      const cur = rgba[y * stride + x]!;
      const left = x >= 4 ? rgba[y * stride + x - 4]! : 0;
      raw[o + 1 + x] = (cur - left) & 0xff;
    }
  }
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level: 9 })), chunk('IEND', new Uint8Array(0))]);
}

export interface PngInfo {
  width: number;
  height: number;
  bitDepth: number;
  /** 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA. */
  colorType: number;
  /** Chunk types in file order. */
  chunks: string[];
  /** The inflated IDAT stream: one filter byte and the filtered bytes per row. */
  filtered: Buffer;
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };

/**
 * Parses and checks a PNG: the signature, every chunk's CRC, IHDR first and IEND last, the
 * IHDR fields, and that the IDAT data inflates to exactly one filter byte plus one row of
 * bytes per scanline with known filter types. Throws with what is wrong; 8/16-bit non-palette,
 * non-interlaced images only (all that encodePng writes).
 */
export function readPngInfo(buf: Uint8Array): PngInfo {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 8 || !b.subarray(0, 8).equals(SIGNATURE)) throw new Error('readPngInfo: not a PNG file (bad signature)');
  const chunks: string[] = [];
  const idat: Buffer[] = [];
  let ihdr: Buffer | null = null;
  let pos = 8;
  while (pos < b.length) {
    if (pos + 12 > b.length) throw new Error(`readPngInfo: truncated chunk header at byte ${pos}`);
    const len = b.readUInt32BE(pos);
    const type = b.toString('latin1', pos + 4, pos + 8);
    if (pos + 12 + len > b.length) throw new Error(`readPngInfo: chunk ${type} at byte ${pos} runs past the end of the file`);
    const data = b.subarray(pos + 8, pos + 8 + len);
    const stored = b.readUInt32BE(pos + 8 + len);
    const actual = crc32(b.subarray(pos + 4, pos + 8 + len));
    if (stored !== actual) {
      throw new Error(`readPngInfo: CRC mismatch in chunk ${type} at byte ${pos}: stored ${stored.toString(16)}, computed ${actual.toString(16)}`);
    }
    if (chunks.length === 0 && type !== 'IHDR') throw new Error(`readPngInfo: first chunk is ${type}, expected IHDR`);
    chunks.push(type);
    if (type === 'IHDR') ihdr = data;
    else if (type === 'IDAT') idat.push(data);
    pos += 12 + len;
    if (type === 'IEND') break;
  }
  if (chunks[chunks.length - 1] !== 'IEND') throw new Error('readPngInfo: no IEND chunk');
  if (pos !== b.length) throw new Error(`readPngInfo: ${b.length - pos} bytes after IEND`);
  if (!ihdr || ihdr.length !== 13) throw new Error('readPngInfo: IHDR missing or not 13 bytes');
  if (idat.length === 0) throw new Error('readPngInfo: no IDAT chunk');
  const width = ihdr.readUInt32BE(0), height = ihdr.readUInt32BE(4);
  const bitDepth = ihdr[8]!, colorType = ihdr[9]!;
  if (width === 0 || height === 0) throw new Error(`readPngInfo: empty image ${width}x${height}`);
  const channels = CHANNELS[colorType];
  if (channels === undefined || (bitDepth !== 8 && bitDepth !== 16)) {
    throw new Error(`readPngInfo: unsupported colour type ${colorType} / bit depth ${bitDepth}`);
  }
  if (ihdr[10] !== 0 || ihdr[11] !== 0 || ihdr[12] !== 0) throw new Error('readPngInfo: unsupported compression, filter or interlace method');
  let filtered: Buffer;
  try {
    filtered = inflateSync(Buffer.concat(idat));
  } catch (e) {
    throw new Error(`readPngInfo: IDAT does not inflate: ${(e as Error).message}`);
  }
  const stride = (width * channels * bitDepth) / 8;
  if (filtered.length !== height * (stride + 1)) {
    throw new Error(`readPngInfo: IDAT inflates to ${filtered.length} bytes, a ${width}x${height} image needs ${height * (stride + 1)}`);
  }
  for (let y = 0; y < height; y++) {
    const f = filtered[y * (stride + 1)]!;
    if (f > 4) throw new Error(`readPngInfo: row ${y} has unknown filter type ${f}`);
  }
  return { width, height, bitDepth, colorType, chunks, filtered };
}

const paeth = (a: number, b: number, c: number) => {
  const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
};

/** Decodes an 8-bit RGBA PNG (what encodePng writes) to its pixels, undoing all five row filters. */
export function decodePngRgba(buf: Uint8Array): { width: number; height: number; rgba: Uint8Array } {
  const info = readPngInfo(buf);
  if (info.colorType !== 6 || info.bitDepth !== 8) {
    throw new Error(`decodePngRgba: only 8-bit RGBA is decoded, got colour type ${info.colorType} bit depth ${info.bitDepth}`);
  }
  const { width, height, filtered } = info;
  const stride = width * 4;
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const f = filtered[y * (stride + 1)]!;
    const src = y * (stride + 1) + 1, row = y * stride, up = row - stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= 4 ? out[row + x - 4]! : 0;
      const b = y > 0 ? out[up + x]! : 0;
      const c = x >= 4 && y > 0 ? out[up + x - 4]! : 0;
      const pred = f === 0 ? 0 : f === 1 ? a : f === 2 ? b : f === 3 ? (a + b) >> 1 : paeth(a, b, c);
      out[row + x] = (filtered[src + x]! + pred) & 0xff;
    }
  }
  return { width, height, rgba: out };
}
