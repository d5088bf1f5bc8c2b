// Run inside a temporary project that installed the packed tarballs (install.test.ts): it imports
// every package as a user would (argv[2] says how), checks a custom op with gradcheck on 'cpu' (the
// prebuilt addon, where nothing was compiled), and takes one training step of resnet18 on 'cpu'
// and on 'ts' from the same weights, printing one JSON line for the test to assert on.
import assert from 'node:assert/strict';

// `node check.mjs scoped` imports @nodegrad/* as a project that installed each package does;
// `node check.mjs nodegrad` imports nodegrad/* as one that installed only `nodegrad` (under pnpm's
// strict layout it can import nothing else).
const from = process.argv[2] === 'nodegrad'
  ? { autograd: 'nodegrad/autograd', functional: 'nodegrad/autograd/functional', testing: 'nodegrad/autograd/testing',
    data: 'nodegrad/data', distributed: 'nodegrad/distributed', native: 'nodegrad/native', nn: 'nodegrad/nn' }
  : { autograd: '@nodegrad/autograd', functional: '@nodegrad/autograd/functional', testing: '@nodegrad/autograd/testing',
    data: '@nodegrad/data', distributed: '@nodegrad/distributed', native: '@nodegrad/native', nn: '@nodegrad/nn' };
const { defineOp, fromTypedArray, manualSeed, randn, Tensor } = await import(from.autograd);
const { vjp } = await import(from.functional);
const { gradcheck } = await import(from.testing);
const { mnist } = await import(from.data);
const { DistributedDataParallel } = await import(from.distributed);
const { describeBuild } = await import(from.native);
const { CrossEntropyLoss, SGD, resnet18 } = await import(from.nn);
const { parseFlags } = await import('nodegrad');

const out = {};
out.imports = { DistributedDataParallel: typeof DistributedDataParallel, vjp: typeof vjp, parseFlags: typeof parseFlags };

/** softsign(x) = x / (1 + |x|), defined outside the library from kernels. */
const softsign = defineOp({
  name: 'softsign',
  forward(ctx, x) {
    const k = x.backend.kernels;
    const one = x.backend.fromArray(new Float64Array([1]), [], x.dtype);
    ctx.save(x);
    return Tensor.fromRaw(k.Div(x, k.Add(k.Abs(x), one)), x.backend);
  },
  backward(ctx, g) {
    const [x] = ctx.saved;
    const d = x.abs().add(1);
    return [g.div(d.mul(d))];
  },
});
manualSeed(0);
out.gradcheck = gradcheck(softsign, [randn([3, 4], { dtype: 'float64', requiresGrad: true, device: 'cpu' })]);

out.build = describeBuild();
out.mnist = mnist('val', { limit: 20 }).length;

/** One SGD step of a resnet18 on `device`; the loss and the fc weights after the step. */
function step(model, device, x, y) {
  const optimizer = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  const loss = new CrossEntropyLoss().call(model.call(x.to(device)), y.to(device));
  loss.backward();
  optimizer.step();
  return { loss: loss.item(), fc: Float64Array.from(model.fc.weight.to('ts').dataSync()) };
}
manualSeed(1);
const model = resnet18({ numClasses: 10 }).to('cpu');
const reference = resnet18({ numClasses: 10 }).to('ts');
reference.loadStateDict(model.stateDict());
const x = randn([4, 3, 64, 64], { device: 'ts' });
const y = fromTypedArray(Float64Array.from([3, 7, 0, 9]), [4], { dtype: 'int64', device: 'ts' });
const cpu = step(model, 'cpu', x, y);
const ts = step(reference, 'ts', x, y);
assert.equal(cpu.fc.length, ts.fc.length);
out.step = {
  device: model.fc.weight.device,
  lossCpu: cpu.loss,
  lossTs: ts.loss,
  fcMaxDiff: Math.max(...cpu.fc.map((v, i) => Math.abs(v - ts.fc[i]))),
  fcMaxAbs: Math.max(...ts.fc.map(Math.abs)),
};
console.log(JSON.stringify(out));
