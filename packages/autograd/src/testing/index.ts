/** @nodegrad/autograd/testing: checks for users' test suites. */
export { gradcheck, gradgradcheck, type GradcheckOptions } from './gradcheck.js';
