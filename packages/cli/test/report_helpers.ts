/** Test helpers: an independent PNG decoder (libvips through the sharp package, a dependency of @nodegrad/data). */
import sharp from 'sharp';

/** Decodes a PNG file with sharp: its size, channel count and pixels as RGBA bytes. */
export async function sharpDecode(file: string): Promise<{ width: number; height: number; channels: number; rgba: Buffer }> {
  const { data, info } = await sharp(file).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: info.channels, rgba: data };
}
