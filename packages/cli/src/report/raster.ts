/**
 * An RGBA raster with the few primitives a line chart needs: rectangles, anti-aliased thick lines
 * and discs (coverage from the exact distance to the segment), and text in the 5×7 bitmap font.
 */
import { GLYPH_H, GLYPH_W, glyph } from './font.js';

export type Rgb = readonly [number, number, number];

export class Canvas {
  readonly rgba: Uint8Array;

  constructor(readonly width: number, readonly height: number, background: Rgb = [255, 255, 255]) {
    this.rgba = new Uint8Array(width * height * 4);
    for (let i = 0; i < width * height; i++) {
      this.rgba[4 * i] = background[0];
      this.rgba[4 * i + 1] = background[1];
      this.rgba[4 * i + 2] = background[2];
      this.rgba[4 * i + 3] = 255;
    }
  }

  /** Mixes colour c into pixel (x, y) with coverage a in [0, 1]; outside the canvas it does nothing. */
  blend(x: number, y: number, c: Rgb, a: number): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height || a <= 0) return;
    const i = 4 * (y * this.width + x);
    const k = Math.min(1, a);
    for (let ch = 0; ch < 3; ch++) this.rgba[i + ch] = Math.round(this.rgba[i + ch]! * (1 - k) + c[ch]! * k);
  }

  pixel(x: number, y: number): [number, number, number] {
    const i = 4 * (y * this.width + x);
    return [this.rgba[i]!, this.rgba[i + 1]!, this.rgba[i + 2]!];
  }

  fillRect(x: number, y: number, w: number, h: number, c: Rgb): void {
    const x0 = Math.max(0, Math.round(x)), y0 = Math.max(0, Math.round(y));
    const x1 = Math.min(this.width, Math.round(x + w)), y1 = Math.min(this.height, Math.round(y + h));
    for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) this.blend(xx, yy, c, 1);
  }

  /**
   * A line of the given width from (x0, y0) to (x1, y1) with round caps: each nearby pixel centre
   * gets coverage from its distance to the segment, so pixels within width/2 - 0.5 are the exact
   * colour and the edge fades over one pixel. A zero-length segment is a disc.
   */
  line(x0: number, y0: number, x1: number, y1: number, width: number, c: Rgb): void {
    const r = width / 2;
    const minX = Math.floor(Math.min(x0, x1) - r - 1), maxX = Math.ceil(Math.max(x0, x1) + r + 1);
    const minY = Math.floor(Math.min(y0, y1) - r - 1), maxY = Math.ceil(Math.max(y0, y1) + r + 1);
    const dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    for (let py = Math.max(0, minY); py <= Math.min(this.height - 1, maxY); py++) {
      for (let px = Math.max(0, minX); px <= Math.min(this.width - 1, maxX); px++) {
        const cx = px + 0.5, cy = py + 0.5;
        const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((cx - x0) * dx + (cy - y0) * dy) / len2));
        const d = Math.hypot(cx - (x0 + t * dx), cy - (y0 + t * dy));
        const cover = Math.max(0, Math.min(1, r + 0.5 - d));
        // Coverage is applied as "at least this much of c", so a pixel shared by two segments of
        // one polyline is not darkened twice at the joint.
        if (cover > 0) this.cover(px, py, c, cover);
      }
    }
  }

  disc(x: number, y: number, radius: number, c: Rgb): void {
    this.line(x, y, x, y, 2 * radius, c);
  }

  /** Blends c in so that the pixel is at least `cover` of the way from its background to c. */
  private cover(x: number, y: number, c: Rgb, cover: number): void {
    const i = 4 * (y * this.width + x);
    // How far the pixel already is towards c, judged on the channel that differs most.
    let done = 1;
    for (let ch = 0; ch < 3; ch++) {
      const cur = this.rgba[i + ch]!;
      if (cur === c[ch]) continue;
      const span = cur > c[ch]! ? 255 - c[ch]! : c[ch]!;
      done = Math.min(done, span === 0 ? 1 : 1 - Math.abs(cur - c[ch]!) / span);
    }
    if (done >= cover) return;
    this.blend(x, y, c, cover === 1 ? 1 : (cover - done) / (1 - done));
  }

  /** Width in pixels of `text` at `scale` (one blank column between glyphs). */
  static textWidth(text: string, scale = 1): number {
    return text.length === 0 ? 0 : (text.length * (GLYPH_W + 1) - 1) * scale;
  }

  static textHeight(scale = 1): number {
    return GLYPH_H * scale;
  }

  /** Draws text with its top-left at (x, y), or aligned by `align` about x. */
  text(text: string, x: number, y: number, c: Rgb, scale = 1, align: 'left' | 'center' | 'right' = 'left'): void {
    const w = Canvas.textWidth(text, scale);
    let left = Math.round(align === 'left' ? x : align === 'center' ? x - w / 2 : x - w);
    const top = Math.round(y);
    for (const ch of text) {
      const rows = glyph(ch);
      for (let r = 0; r < rows.length; r++) {
        for (let col = 0; col < GLYPH_W; col++) {
          if ((rows[r]! >> (GLYPH_W - 1 - col)) & 1) this.fillRect(left + col * scale, top + r * scale, scale, scale, c);
        }
      }
      left += (GLYPH_W + 1) * scale;
    }
  }
}
