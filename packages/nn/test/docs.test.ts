// Runs every `// example:` block of docs/nn.md as its own module: the guide cannot drift from the code.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

describe('docs/nn.md examples', () => {
  const doc = readFileSync(fileURLToPath(new URL('../../../docs/nn.md', import.meta.url)), 'utf8');
  const blocks = [...doc.matchAll(/```ts\n(\/\/ example: (.*)\n[\s\S]*?)```/g)].map((m) => ({ code: m[1]!, title: m[2]! }));
  const dir = mkdtempSync(join(tmpdir(), 'nodegrad-nn-doc-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('has the training-loop, transfer-learning, mixed-precision, fused-training and fused-inference examples', () => {
    expect(blocks.map((b) => b.title)).toEqual(['a ten-line training loop', 'transfer learning', 'mixed precision training',
      'fused training', 'fused inference']);
  });

  blocks.forEach(({ code, title }, i) => {
    it(title, async () => {
      const file = join(dir, `example_${i}.ts`);
      writeFileSync(file, `${code}\nexport {};\n`);
      await import(/* @vite-ignore */ file);
    });
  });
});
