/** Whether ops record onto the tape. Backward turns it off unless `createGraph` asks for it. */
let enabled = true;
let anomaly = false;
/** Whether ops propagate the tangents of dual tensors (off inside an op's own forward and JVP). */
let forwardAd = true;

export function isGradEnabled(): boolean {
  return enabled;
}

function withMode<T>(on: boolean, fn: () => T): T {
  const prev = enabled;
  enabled = on;
  try {
    return fn();
  } finally {
    enabled = prev;
  }
}

/** Runs fn without recording: results do not require grad. */
export function noGrad<T>(fn: () => T): T {
  return withMode(false, fn);
}

/** Runs fn with recording on, e.g. inside a `noGrad` block. */
export function enableGrad<T>(fn: () => T): T {
  return withMode(true, fn);
}

export function setGradEnabled(on: boolean): void {
  enabled = on;
}

export function isAnomalyEnabled(): boolean {
  return anomaly;
}

/**
 * Runs fn with anomaly detection: ops remember where they were created, and a backward that
 * produces NaN or Inf throws, naming the forward op and its creation stack.
 */
export function detectAnomaly<T>(fn: () => T): T {
  const prev = anomaly;
  anomaly = true;
  try {
    return fn();
  } finally {
    anomaly = prev;
  }
}

export function isForwardAdEnabled(): boolean {
  return forwardAd;
}

/**
 * Runs fn with tangent propagation off: an op's forward and its JVP rule run so, as the op
 * propagates tangents itself (one level of forward mode, as PyTorch's default dual level).
 */
/** @internal Sets whether ops propagate tangents; returns the previous setting (for a try/finally). */
export function setForwardAd(on: boolean): boolean {
  const prev = forwardAd;
  forwardAd = on;
  return prev;
}

export function withoutForwardAd<T>(fn: () => T): T {
  const prev = setForwardAd(false);
  try {
    return fn();
  } finally {
    setForwardAd(prev);
  }
}

/** Vectorized forward mode: every tangent carries a leading dim of this many columns (0: off). */
let tangentBatch = 0;

export function tangentBatchSize(): number {
  return tangentBatch;
}

/** Runs fn with batched tangents of `size` columns: functional.jacobian's `vectorize`. */
export function withTangentBatch<T>(size: number, fn: () => T): T {
  const prev = tangentBatch;
  tangentBatch = size;
  try {
    return fn();
  } finally {
    tangentBatch = prev;
  }
}
