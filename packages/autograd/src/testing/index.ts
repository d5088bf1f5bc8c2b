/** @nodegrad/autograd/testing: checks for users' test suites. */
export { gradcheck, gradgradcheck, type GradcheckOptions } from './gradcheck.js';
export { checkParity, type ParityOptions } from './parity.js';
export { describeBackends, type DescribeFn, type DescribeBackendsOptions } from './backends.js';
