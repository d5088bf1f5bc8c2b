/** nodegrad/autograd/functional: @nodegrad/autograd/functional, for projects that install only `nodegrad`. */
export * from '@nodegrad/autograd/functional';
