/** Installs free-function ops as Tensor methods: `x.add(y)` is `add(x, y)`. */
import { Tensor } from './tensor.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Fn = (self: Tensor, ...args: any[]) => unknown;

export function installMethods(fns: Record<string, Fn>): void {
  for (const [name, fn] of Object.entries(fns)) {
    Object.defineProperty(Tensor.prototype, name, {
      value: function (this: Tensor, ...args: unknown[]) { return fn(this, ...args); },
      writable: true,
      configurable: true,
    });
  }
}
