/** nodegrad/distributed: @nodegrad/distributed, for projects that install only `nodegrad`. */
export * from '@nodegrad/distributed';
