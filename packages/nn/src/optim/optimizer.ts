/**
 * Optimizer: PyTorch's torch.optim.Optimizer. Parameters are held in param groups, each a plain
 * object `{ params, lr, ... }` whose options override the optimizer's defaults; per-parameter
 * state (momentum buffers, Adam moments) lives in `state`, keyed by the parameter tensor.
 * `step()` updates the parameters in place under noGrad, so the tensors a model holds stay the
 * same objects. `stateDict()` has PyTorch's layout: state keyed by parameter index, param groups
 * with `params` as index lists and option names in PyTorch's spelling (`weight_decay`).
 */
import { enableGrad, fmt, keep, noGrad, releaseGrad, Tensor } from '@nodegrad/autograd';
import { replacedByTo } from '../module.js';

/** One param group: its tensors and its options (lr and the optimizer's own). */
export interface ParamGroup {
  params: Tensor[];
  lr: number;
  /** The lr a schedule starts from; set by the first LR scheduler attached to the optimizer. */
  initialLr?: number;
  /** The parameters' names, when they were given as `namedParameters()` pairs (saved as `param_names`). */
  paramNames?: string[];
}

/** Parameters as tensors, or as [name, tensor] pairs (`model.namedParameters()`, PyTorch 2's named groups). */
export type ParamList = Iterable<Tensor> | Iterable<readonly [string, Tensor]>;

/** A param group as given to a constructor or `addParamGroup`: options left out take the defaults. */
export type ParamGroupSpec<G extends ParamGroup = ParamGroup> =
  { params: ParamList | Tensor } & Partial<Omit<G, 'params' | 'paramNames'>>;

/** What an optimizer optimizes: a list of tensors or of named pairs (one group), or a list of param groups. */
export type Params<G extends ParamGroup = ParamGroup> = ParamList | Iterable<ParamGroupSpec<G>>;

const isNamed = (v: unknown): v is readonly [string, Tensor] => Array.isArray(v) && v.length === 2 && typeof v[0] === 'string';

/** Per-parameter state: tensors, plus plain numbers such as Adam's step count. */
export type ParamState = Record<string, Tensor | number | null>;

/** The serializable state: PyTorch's `{ state, param_groups }`. */
export interface OptimizerStateDict {
  /** Per-parameter state keyed by the parameter's index over all groups in order. */
  state: Record<number, ParamState>;
  /** Each group's options (snake_case keys, as PyTorch writes them) and its parameters' indices. */
  param_groups: (Record<string, unknown> & { params: number[] })[];
}

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const camel = (k: string) => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
const copyValue = (v: unknown): unknown => (Array.isArray(v) ? [...v] : v);

export abstract class Optimizer<G extends ParamGroup = ParamGroup> {
  readonly paramGroups: G[] = [];
  readonly state = new Map<Tensor, ParamState>();

  /**
   * @param name the optimizer's name, used in error messages.
   * @param defaults options for every group that does not set its own (an optimizer without a
   *   default lr needs one in every group).
   */
  protected constructor(protected readonly name: string, params: Params<G>,
    readonly defaults: Partial<Omit<G, 'params'>>) {
    this.checkOptions(defaults, `${name}`);
    const list = [...(params as Iterable<unknown>)];
    if (list.length === 0) throw new Error(`${name}: got an empty parameter list`);
    const groups = list[0] instanceof Tensor || isNamed(list[0]) ? [{ params: list as Tensor[] }] : list as ParamGroupSpec<G>[];
    for (const g of groups) this.addParamGroup(g as ParamGroupSpec<G>);
  }

  /**
   * Checks the options present in `o` (absent ones are skipped), throwing an error that names
   * the optimizer, where the options came from, and the argument.
   */
  protected abstract checkOptions(o: Partial<Omit<G, 'params'>>, where: string): void;

  /** Updates the parameters of one group that have a gradient; runs under noGrad. */
  protected abstract updateGroup(group: G, params: Tensor[]): void;

  /** Adds a group (e.g. layers unfrozen while fine-tuning); its missing options take the defaults. */
  addParamGroup(spec: ParamGroupSpec<G>): void {
    const where = `${this.name}: param group ${this.paramGroups.length}`;
    if (spec === null || typeof spec !== 'object' || !('params' in spec)) {
      throw new Error(`${where}: expected an object { params, ...options }`);
    }
    const given: unknown[] = spec.params instanceof Tensor ? [spec.params] : [...spec.params];
    if (given.length === 0) throw new Error(`${where}: 'params' is empty`);
    const named = given.map(isNamed);
    if (named.some((n) => n !== named[0])) throw new Error(`${where}: give every parameter as a tensor or every one as a [name, tensor] pair`);
    if (this.paramGroups.length && named[0] !== (this.paramGroups[0]!.paramNames !== undefined)) {
      throw new Error(`${where}: all param groups must be given with names or all without (as PyTorch)`);
    }
    const pairs = named[0] ? given as [string, Tensor][] : null;
    const params = (pairs ? pairs.map(([, p]) => p) : given) as Tensor[];
    params.forEach((p, i) => {
      if (!(p instanceof Tensor)) throw new Error(`${where}: params[${i}] is not a Tensor`);
      if (!p.isLeaf) throw new Error(`${where}: params[${i}] (${fmt(p.shape)}) is not a leaf tensor; optimize leaves only`);
      if (p.dtype === 'int32' || p.dtype === 'int64') throw new Error(`${where}: params[${i}] has dtype ${p.dtype}; only float tensors can be optimized`);
    });
    if (new Set(params).size !== params.length) throw new Error(`${where}: a parameter appears twice in the group`);
    const taken = new Set(this.paramGroups.flatMap((g) => g.params));
    if (params.some((p) => taken.has(p))) throw new Error(`${where}: some parameters appear in more than one parameter group`);
    const group = { ...this.defaults, ...spec, params, ...(pairs && { paramNames: pairs.map(([n]) => n) }) } as unknown as G;
    this.checkGroup(group, where);
    this.paramGroups.push(group);
  }

  private checkGroup(group: G, where: string): void {
    if (group.lr === undefined) throw new Error(`${where}: no 'lr' given (an lr of undefined does not take the default)`);
    this.checkOptions(group, where);
  }

  /** Clears the gradients of every parameter: to null (default, PyTorch 2's set_to_none) or to zeros. */
  zeroGrad(setToNone = true): void {
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (!p.grad) continue;
        if (setToNone) releaseGrad(p);
        else noGrad(() => { p.grad = p.grad!.gradFn ? p.grad!.detach() : p.grad!; p.grad.zero_(); });
      }
    }
  }

  /**
   * One update of every parameter that has a gradient. `closure`, if given, recomputes the loss
   * (with gradients recorded) before the update; its result is returned.
   */
  step(closure?: () => Tensor): Tensor | undefined {
    const loss = closure ? enableGrad(closure) : undefined;
    noGrad(() => {
      for (const g of this.paramGroups) {
        const stale = g.params.findIndex((p) => replacedByTo.has(p));
        if (stale >= 0) {
          throw new Error(`${this.name}.step: parameter ${stale} of group ${this.paramGroups.indexOf(g)} was replaced by Module.to(), ` +
            'so the model no longer uses it; build the optimizer after moving the model');
        }
        const withGrad = g.params.filter((p) => p.grad);
        if (withGrad.length) this.updateGroup(g, withGrad);
        // State made during the update (momentum, moments) must outlive a tidy() around the step.
        for (const p of withGrad) for (const v of Object.values(this.state.get(p) ?? {})) if (v instanceof Tensor) keep(v);
      }
    });
    return loss;
  }

  /** The state of `p`, created empty on first use. */
  protected stateOf(p: Tensor): ParamState {
    let s = this.state.get(p);
    if (!s) this.state.set(p, (s = {}));
    return s;
  }

  /** A snapshot of the optimizer's state in PyTorch's layout (tensors are copies). */
  stateDict(): OptimizerStateDict {
    const index = new Map<Tensor, number>();
    const paramGroups = this.paramGroups.map((g) => {
      const packed: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(g)) if (k !== 'params') packed[snake(k)] = copyValue(v);
      return { ...packed, params: g.params.map((p) => { index.set(p, index.size); return index.size - 1; }) };
    });
    const state: Record<number, ParamState> = {};
    for (const [p, s] of this.state) {
      const i = index.get(p);
      if (i === undefined) continue;
      state[i] = Object.fromEntries(Object.entries(s).map(([k, v]) =>
        [k, v instanceof Tensor ? noGrad(() => v.detach().clone()) : v]));
    }
    return { state, param_groups: paramGroups };
  }

  /**
   * Restores a state from `stateDict()` (or PyTorch's, converted): groups must match in number
   * and size; state tensors are copied and converted to their parameter's dtype and device, and
   * must have its shape. The groups' options are replaced by the saved ones.
   */
  loadStateDict(dict: OptimizerStateDict): void {
    const where = `${this.name}.loadStateDict`;
    const saved = dict?.param_groups;
    if (!Array.isArray(saved)) throw new Error(`${where}: 'param_groups' must be an array`);
    if (saved.length !== this.paramGroups.length) {
      throw new Error(`${where}: the state dict has ${saved.length} parameter groups, the optimizer has ${this.paramGroups.length}`);
    }
    const byIndex = new Map<number, Tensor>();
    saved.forEach((sg, gi) => {
      const own = this.paramGroups[gi]!.params;
      if (!Array.isArray(sg?.params) || sg.params.length !== own.length) {
        throw new Error(`${where}: param group ${gi} has ${Array.isArray(sg?.params) ? sg.params.length : 'no'} ` +
          `parameters in the state dict and ${own.length} in the optimizer`);
      }
      sg.params.forEach((idx, k) => byIndex.set(idx, own[k]!));
    });
    const newGroups = saved.map((sg, gi) => {
      // An option the saved group lacks (one added since, as decoupled_weight_decay) takes the default.
      const group: Record<string, unknown> = Object.fromEntries(Object.entries(this.defaults).map(([k, v]) => [k, copyValue(v)]));
      for (const [k, v] of Object.entries(sg)) if (k !== 'params') group[camel(k)] = copyValue(v);
      group.params = this.paramGroups[gi]!.params;
      this.checkGroup(group as G, `${where}: param group ${gi}`);
      return group;
    });
    const state = new Map<Tensor, ParamState>();
    for (const [key, entry] of Object.entries(dict.state ?? {})) {
      const p = byIndex.get(Number(key));
      if (!p) throw new Error(`${where}: state for parameter index ${key}, which no param group lists`);
      state.set(p, Object.fromEntries(Object.entries(entry).map(([k, v]) => [k, loadValue(where, key, k, v, p)])));
    }
    // Everything checked: now replace, keeping the group objects (a caller may hold one).
    newGroups.forEach((ng, gi) => {
      const g = this.paramGroups[gi]! as Record<string, unknown>;
      for (const k of Object.keys(g)) delete g[k];
      Object.assign(g, ng);
    });
    this.state.clear();
    for (const [p, s] of state) {
      for (const v of Object.values(s)) if (v instanceof Tensor) keep(v);
      this.state.set(p, s);
    }
  }
}

/** A saved state value, copied: counts stay numbers; tensors take the parameter's shape, dtype, device. */
function loadValue(where: string, index: string, key: string, v: unknown, p: Tensor): Tensor | number | null {
  if (v === null || typeof v === 'number') return v;
  if (!(v instanceof Tensor)) throw new Error(`${where}: state[${index}].${key} must be a Tensor, a number or null`);
  // PyTorch 1.13 keeps Adam's step as a 0-d tensor; nodegrad keeps a number.
  if (key === 'step') return v.item();
  if (v.shape.join() !== p.shape.join()) {
    throw new Error(`${where}: state[${index}].${key} has shape ${fmt(v.shape)} but the parameter has ${fmt(p.shape)}`);
  }
  return noGrad(() => v.detach().to(p.device).to(p.dtype).clone());
}

/**
 * `params` split into the lists one fused call takes: same device, same dtype, same `key` (a
 * per-parameter scalar of an update, such as Adam's step count), in their order. A group trained
 * from the start is one list; DDP broadcasts buffers by the same lists.
 */
export function fusedLists(params: readonly Tensor[], key: (p: Tensor) => string | number = () => ''): Tensor[][] {
  const lists = new Map<string, Tensor[]>();
  for (const p of params) {
    const k = `${p.device} ${p.dtype} ${key(p)}`;
    const list = lists.get(k);
    if (list) list.push(p);
    else lists.set(k, [p]);
  }
  return [...lists.values()];
}

/** Throws unless `v` is a finite number >= 0 (lr, weight decay, momentum, eps). */
export function checkNonNegative(where: string, name: string, v: unknown): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) {
    throw new Error(`${where}: invalid ${name} ${String(v)}: must be a finite number >= 0`);
  }
}

/** Throws unless `v` is a boolean. */
export function checkBoolean(where: string, name: string, v: unknown): void {
  if (v !== undefined && typeof v !== 'boolean') throw new Error(`${where}: invalid ${name} ${String(v)}: must be true or false`);
}
