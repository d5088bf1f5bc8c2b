// NODEGRAD_REQUIRE_BACKENDS (a comma list, e.g. `cpu`; .ci/run sets it) turns a missing backend
// into a failing test. Without it a failed addon build only warns at install time, every native
// suite skips, and the run stays green: fine on a user's machine, wrong in CI.
import { describe, expect, it } from 'vitest';
import { backends } from '@nodegrad/autograd';
import { cuda } from '@nodegrad/native'; // registers 'cpu', or reports why not (vitest.setup.ts does too)

const required = (process.env.NODEGRAD_REQUIRE_BACKENDS ?? '').split(',').map((s) => s.trim()).filter(Boolean);

/** Why `name` is not usable here, or null when it is. */
function whyMissing(name: string): string | null {
  const all = backends();
  const b = all.find((x) => x.name === name);
  if (b?.available) return null;
  return b ? `the required backend '${name}' is unavailable: ${b.reason ?? 'no reason given'}`
    : `the required backend '${name}' is not registered (known: ${all.map((x) => x.name).join(', ')})`;
}

describe(`required backends (NODEGRAD_REQUIRE_BACKENDS=${required.join(',')})`, () => {
  if (required.length === 0) it.skip('each required backend is available (skipped: NODEGRAD_REQUIRE_BACKENDS is not set)', () => {});
  for (const name of required) {
    it(`backend '${name}' is available`, () => {
      const why = whyMissing(name);
      if (why !== null) throw new Error(why);
    });
  }
});

describe('whyMissing', () => {
  it("names the backend and gives the reason backends() has, or the backends there are", () => {
    expect(whyMissing('ts')).toBeNull();
    expect(whyMissing('tpu:0')).toBe(`the required backend 'tpu:0' is not registered (known: ${backends().map((b) => b.name).join(', ')})`);
    const cpu = backends().find((b) => b.name === 'cpu')!;
    expect(whyMissing('cpu')).toBe(cpu.available ? null : `the required backend 'cpu' is unavailable: ${cpu.reason}`);
  });
});

// NODEGRAD_REQUIRE_CUDA_BUILD (.ci/run sets it): the 'cuda' addon must have built and load. On a
// machine without a GPU it then reports the driver's reason (or that there is no driver), never a
// build or loader failure.
describe(`the 'cuda' addon (NODEGRAD_REQUIRE_CUDA_BUILD=${process.env.NODEGRAD_REQUIRE_CUDA_BUILD ?? ''})`, () => {
  const required = Boolean(process.env.NODEGRAD_REQUIRE_CUDA_BUILD);
  (required ? it : it.skip)(`built and loaded, with its libraries' versions${required ? '' : ' (skipped: NODEGRAD_REQUIRE_CUDA_BUILD is not set)'}`, () => {
    const d = cuda.describe();
    if (!d.versions) throw new Error(`the 'cuda' addon did not load: ${d.reason}`);
    expect(d.versions.cudnn).toBeGreaterThanOrEqual(90000);
    expect(d.versions.nccl).toBeGreaterThanOrEqual(22000);
    // No GPU: the driver's answer, or (without a driver, so the addon was not loaded for it) that.
    if (!d.available) expect(d.reason).toMatch(/^(cudaGetDeviceCount|no NVIDIA driver on this machine)/);
    else expect(d.devices.length).toBeGreaterThan(0);
  });
});
