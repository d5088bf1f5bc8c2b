/** nodegrad/native: @nodegrad/native, for projects that install only `nodegrad`. */
export * from '@nodegrad/native';
