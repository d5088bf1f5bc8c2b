/**
 * Containers, as torch.nn's: Sequential (children "0", "1", ... run in order), ModuleList (the
 * same numbering, no forward) and ModuleDict (children by key). Children are registered modules,
 * so their parameters, state-dict keys (`layers.0.weight`) and `to()` work as for any attribute,
 * and `list[0]` / `dict.key` read them as properties.
 */
import { Module } from '../module.js';

function checkModule(op: string, m: unknown): Module {
  if (!(m instanceof Module)) {
    const what = m === null ? 'null' : typeof m === 'object' ? (m as object).constructor?.name ?? 'object' : typeof m;
    throw new Error(`${op}: ${what} is not a Module`);
  }
  return m;
}

/** Children numbered from 0, kept numbered through inserts and removals (PyTorch renumbers too). */
abstract class NumberedModules extends Module {
  constructor(modules: Iterable<Module>) {
    super();
    this.extend(modules);
  }

  /** Every entry, a module held twice included (Sequential(l, l) runs l twice, as PyTorch). */
  protected listed(): Module[] {
    return [...this.namedChildren(false)].map(([, m]) => m);
  }

  /** The number of child modules. */
  get length(): number {
    return this.listed().length;
  }

  /** The position of index i (negative counts from the end), or an error naming the container. */
  private position(op: string, i: number): number {
    const n = this.length;
    const j = i < 0 ? n + i : i;
    if (!Number.isInteger(i) || j < 0 || j >= n) {
      throw new Error(`${this.constructor.name}.${op}: index ${i} is out of range for a ${this.constructor.name} of length ${n}`);
    }
    return j;
  }

  /** The i-th child; negative i counts from the end. */
  at(i: number): Module {
    return this.listed()[this.position('at', i)]!;
  }

  /** Replaces the i-th child (`list[i] = m` in Python). */
  set(i: number, m: Module): this {
    this.registerModule(String(this.position('set', i)), checkModule(`${this.constructor.name}.set`, m));
    return this;
  }

  /** Adds a module at the end, named by its position. */
  append(m: Module): this {
    this.registerModule(String(this.length), checkModule(`${this.constructor.name}.append`, m));
    return this;
  }

  /** Appends each module in turn. */
  extend(modules: Iterable<Module>): this {
    for (const m of modules) this.append(m);
    return this;
  }

  /** Inserts m before index i, as a JS array's splice (negative counts from the end; past the end appends). */
  insert(i: number, m: Module): this {
    checkModule(`${this.constructor.name}.insert`, m);
    const kids = this.listed();
    if (!Number.isInteger(i)) throw new Error(`${this.constructor.name}.insert: index must be an integer, got ${i}`);
    const j = Math.min(Math.max(i < 0 ? kids.length + i : i, 0), kids.length);
    kids.splice(j, 0, m);
    this.renumber(kids);
    return this;
  }

  /** Removes and returns the i-th child (the last by default); the rest are renumbered. */
  pop(i = -1): Module {
    const kids = this.listed();
    const [m] = kids.splice(this.position('pop', i), 1);
    this.renumber(kids);
    return m!;
  }

  private renumber(kids: Module[]): void {
    for (const [n] of [...this.namedChildren(false)]) this.unregisterModule(n);
    kids.forEach((m, j) => this.registerModule(String(j), m));
  }

  [Symbol.iterator](): Iterator<Module> {
    return this.listed()[Symbol.iterator]();
  }
}

/**
 * Chains modules: each one's output is the next one's input.
 * @example new Sequential(new Conv2d(3, 8, 3), new ReLU())
 */
export class Sequential extends NumberedModules {
  constructor(...modules: Module[]) {
    super(modules);
  }

  override forward(x: unknown): any {
    let y = x;
    for (const m of this.listed()) y = m.call(y);
    return y;
  }
}

/**
 * A list of modules whose parameters the model owns; forward is the owner's to write.
 * @example this.blocks = this.registerModule('blocks', new ModuleList([new Linear(4, 4), new Linear(4, 4)]))
 */
export class ModuleList extends NumberedModules {
  constructor(modules: Iterable<Module> = []) {
    super(modules);
  }

  /** A new ModuleList of the children from start to end (exclusive), as Python's `list[a:b]`; the modules are shared. */
  slice(start?: number, end?: number): ModuleList {
    return new ModuleList(this.listed().slice(start, end));
  }

  /** A new ModuleList of this one's modules followed by other's (Python's `a + b`). */
  concat(other: Iterable<Module>): ModuleList {
    return new ModuleList([...this.listed(), ...other]);
  }

  override forward(..._inputs: unknown[]): never {
    throw new Error('ModuleList has no forward (as torch.nn.ModuleList): call its modules from the forward of the module that holds it');
  }

  /** As PyTorch 2: runs of children that print alike are one line, `(0-2): 3 x Linear(...)`. */
  override toString(): string {
    const lines: string[] = [];
    const texts = this.listed().map((m) => m.toString().replace(/\n/g, '\n  '));
    for (let i = 0; i < texts.length;) {
      let j = i + 1;
      while (j < texts.length && texts[j] === texts[i]) j++;
      lines.push(j - i === 1 ? `  (${i}): ${texts[i]}` : `  (${i}-${j - 1}): ${j - i} x ${texts[i]}`);
      i = j;
    }
    return lines.length ? `ModuleList(\n${lines.join('\n')}\n)` : 'ModuleList()';
  }
}

/**
 * Modules by key, in insertion order (setting an existing key keeps its place), as
 * torch.nn.ModuleDict; iterating yields the keys, as Python's. A key that would shadow a member
 * of the class (`train`) is refused, as PyTorch's "attribute already exists".
 * @example const heads = new ModuleDict({ cls: new Linear(8, 10), box: new Linear(8, 4) })
 */
export class ModuleDict extends Module {
  constructor(modules: Record<string, Module> | Iterable<readonly [string, Module]> = {}) {
    super();
    this.update(modules);
  }

  /** The number of entries. */
  get size(): number {
    return this.keys().length;
  }

  has(key: string): boolean {
    return this.keys().includes(key);
  }

  /** The module under key; a missing key is an error (Python's KeyError). */
  get(key: string): Module {
    const m = [...this.namedChildren(false)].find(([k]) => k === key);
    if (!m) throw new Error(`ModuleDict.get: no module under the key '${key}' (keys: ${this.keys().join(', ') || 'none'})`);
    return m[1];
  }

  set(key: string, m: Module): this {
    if (typeof key !== 'string') throw new Error(`ModuleDict.set: keys are strings, got ${typeof key}`);
    this.registerModule(key, checkModule('ModuleDict.set', m));
    return this;
  }

  /** Removes the entry and returns its module; a missing key is an error. */
  pop(key: string): Module {
    const m = this.get(key);
    this.unregisterModule(key);
    return m;
  }

  /** Removes every entry. */
  clear(): void {
    for (const k of this.keys()) this.unregisterModule(k);
  }

  /** Sets each [key, module] pair (an object's own keys in their order). */
  update(modules: Record<string, Module> | Iterable<readonly [string, Module]>): this {
    const pairs = Symbol.iterator in modules ? modules as Iterable<readonly [string, Module]> : Object.entries(modules);
    for (const pair of pairs) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new Error(`ModuleDict.update: each entry must be a [key, module] pair, got ${JSON.stringify(pair)}`);
      }
      this.set(pair[0], pair[1]);
    }
    return this;
  }

  keys(): string[] {
    return [...this.namedChildren(false)].map(([k]) => k);
  }

  values(): Module[] {
    return this.entries().map(([, m]) => m);
  }

  entries(): [string, Module][] {
    return [...this.namedChildren(false)];
  }

  [Symbol.iterator](): Iterator<string> {
    return this.keys()[Symbol.iterator]();
  }

  override forward(..._inputs: unknown[]): never {
    throw new Error('ModuleDict has no forward (as torch.nn.ModuleDict): call its modules from the forward of the module that holds it');
  }
}
