/** nodegrad/autograd/testing: @nodegrad/autograd/testing (gradcheck), for projects that install only `nodegrad`. */
export * from '@nodegrad/autograd/testing';
