/** nodegrad/nn: @nodegrad/nn, for projects that install only `nodegrad`. */
export * from '@nodegrad/nn';
