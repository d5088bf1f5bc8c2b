/** Sequential: children "0", "1", ... run in order, as torch.nn.Sequential. */
import { Module } from '../module.js';

/**
 * Chains modules: each one's output is the next one's input.
 * @example new Sequential(new Conv2d(3, 8, 3), new ReLU())
 */
export class Sequential extends Module {
  constructor(...modules: Module[]) {
    super();
    modules.forEach((m, i) => this.registerModule(String(i), m));
  }

  /** The number of child modules. */
  get length(): number {
    return this.children().length;
  }

  /** The i-th child; negative i counts from the end. */
  at(i: number): Module {
    const kids = this.children();
    const j = i < 0 ? kids.length + i : i;
    if (!Number.isInteger(i) || j < 0 || j >= kids.length) {
      throw new Error(`Sequential.at: index ${i} is out of range for a Sequential of length ${kids.length}`);
    }
    return kids[j]!;
  }

  /** Adds a module at the end, named by its position. */
  append(m: Module): this {
    this.registerModule(String(this.length), m);
    return this;
  }

  [Symbol.iterator](): Iterator<Module> {
    return this.children()[Symbol.iterator]();
  }

  override forward(x: unknown): any {
    let y = x;
    for (const m of this.children()) y = m.call(y);
    return y;
  }
}
