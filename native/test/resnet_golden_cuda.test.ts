// The nn package's ResNet-18/50 goldens against torchvision, run on 'cuda:0' (float32): on the GPU
// test machine through the kit (scripts/gpu), skipped elsewhere with the reason.
import { backends } from '@nodegrad/autograd';
import '@nodegrad/native';
import { describe, it } from 'vitest';
import { goldenSuites } from '../../packages/nn/test/golden_suite.js';

const gpu = backends().find((b) => b.name === 'cuda:0');
if (gpu?.available) {
  goldenSuites('cuda:0', ['float32']);
} else {
  describe.skip(`ResNet goldens on 'cuda:0' (skipped: ${gpu?.reason ?? 'cuda backend not registered'})`, () => {
    it('needs a GPU', () => {});
  });
}
