/** nodegrad/autograd: @nodegrad/autograd, for projects that install only `nodegrad`. */
export * from '@nodegrad/autograd';
