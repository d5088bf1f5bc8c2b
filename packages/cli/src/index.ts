/** @nodegrad/cli: the pieces of the `nodegrad` command, for programs that drive it. */
export { parseFlags, formatFlags, UsageError, CliError, type FlagSpec, type FlagSpecs, type FlagValue } from './args.js';
export { TRAIN_FLAGS, resolveConfig, type TrainConfig } from './train/config.js';
export { loadCheckpoint, type Checkpoint, type RunState } from './train/checkpoint.js';
export { evaluate, type EvalResult } from './train/evaluate.js';
export { METRIC_KEYS, type EpochRow } from './train/files.js';
