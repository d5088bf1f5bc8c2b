import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync, crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32, decodePngRgba, encodePng, readPngInfo } from '../src/report/png.js';
import { sharpDecode } from './report_helpers.js';

/** A 7×5 image with every channel value varying, so any filter or byte-order slip shows. */
function testImage(w = 7, h = 5): Uint8Array {
  const px = new Uint8Array(w * h * 4);
  for (let i = 0; i < px.length; i++) px[i] = (i * 37 + (i >> 3) * 11) & 0xff;
  return px;
}

/** The byte offset of the first chunk of `type`. */
function chunkAt(buf: Buffer, type: string): number {
  let pos = 8;
  while (pos < buf.length) {
    if (buf.toString('latin1', pos + 4, pos + 8) === type) return pos;
    pos += 12 + buf.readUInt32BE(pos);
  }
  throw new Error(`no ${type}`);
}

describe('PNG encoder and reader', () => {
  it('crc32 equals zlib.crc32 and the check value of the CRC-32 catalogue', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    const data = Buffer.from(testImage(31, 3));
    expect(crc32(data)).toBe(zlibCrc32(data));
  });

  it('writes IHDR, IDAT, IEND that the reader validates and decodes back to the same pixels', () => {
    const px = testImage();
    const png = encodePng(7, 5, px);
    const info = readPngInfo(png);
    expect(info).toMatchObject({ width: 7, height: 5, bitDepth: 8, colorType: 6, chunks: ['IHDR', 'IDAT', 'IEND'] });
    expect(Buffer.from(decodePngRgba(png).rgba).equals(Buffer.from(px))).toBe(true);
  });

  it('decodes in sharp (libvips) to the same pixels', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ng-png-')), 'x.png');
    const px = testImage();
    writeFileSync(file, encodePng(7, 5, px));
    const decoded = await sharpDecode(file);
    expect(decoded).toMatchObject({ width: 7, height: 5, channels: 4 });
    expect(decoded.rgba.equals(Buffer.from(px))).toBe(true);
  });

  it('detects a flipped bit in chunk data and in a stored CRC', () => {
    const png = encodePng(7, 5, testImage());
    const idat = chunkAt(png, 'IDAT');
    const tampered = Buffer.from(png);
    tampered[idat + 10]! ^= 0x04;
    expect(() => readPngInfo(tampered)).toThrow(/CRC mismatch in chunk IDAT/);
    const badCrc = Buffer.from(png);
    const ihdrCrc = chunkAt(png, 'IHDR') + 8 + 13;
    badCrc[ihdrCrc]! ^= 0x80;
    expect(() => readPngInfo(badCrc)).toThrow(/CRC mismatch in chunk IHDR/);
  });

  it('rejects a bad signature, a missing IEND and image data of the wrong size', () => {
    const png = encodePng(7, 5, testImage());
    const sig = Buffer.from(png);
    sig[1] = 0x51;
    expect(() => readPngInfo(sig)).toThrow(/bad signature/);
    expect(() => readPngInfo(png.subarray(0, chunkAt(png, 'IEND')))).toThrow(/no IEND/);

    // A well-formed file whose IDAT holds one row too few: every CRC is right, the size is not.
    const chunk = (type: string, data: Buffer) => {
      const c = Buffer.alloc(12 + data.length);
      c.writeUInt32BE(data.length, 0);
      c.write(type, 4, 'latin1');
      data.copy(c, 8);
      c.writeUInt32BE(zlibCrc32(c.subarray(4, 8 + data.length)), 8 + data.length);
      return c;
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(4, 0);
    ihdr.writeUInt32BE(3, 4);
    ihdr[8] = 8;
    ihdr[9] = 6;
    const short = Buffer.concat([png.subarray(0, 8), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(2 * 17))), chunk('IEND', Buffer.alloc(0))]);
    expect(() => readPngInfo(short)).toThrow(/inflates to 34 bytes, a 4x3 image needs 51/);
  });

  it('names the argument when the pixel buffer does not match the size', () => {
    expect(() => encodePng(4, 4, new Uint8Array(10))).toThrow(/encodePng: rgba has 10 bytes, a 4x4 RGBA image needs 64/);
  });
});
