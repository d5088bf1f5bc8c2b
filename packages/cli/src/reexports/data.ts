/** nodegrad/data: @nodegrad/data, for projects that install only `nodegrad`. */
export * from '@nodegrad/data';
