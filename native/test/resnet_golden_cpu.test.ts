// The nn package's ResNet-18/50 goldens against torchvision, run on the native 'cpu' backend (float32).
import { backends } from '@nodegrad/autograd';
import '@nodegrad/native';
import { describe, it } from 'vitest';
import { goldenSuites } from '../../packages/nn/test/golden_suite.js';

const cpu = backends().find((b) => b.name === 'cpu');
if (cpu?.available) {
  goldenSuites('cpu', ['float32']);
} else {
  describe.skip(`ResNet goldens on 'cpu' (skipped: ${cpu?.reason ?? 'cpu backend not registered'})`, () => {
    it('needs the native cpu backend', () => {});
  });
}
