#!/usr/bin/env bash
# Data-parallel benchmark on this machine with 2 ranks (docs/benchmarks.md, "Distributed"):
# raw MPI_Allreduce (bench/mpi_allreduce.c) and nodegrad's allReduce of the same sizes, then DDP's
# step and backward (bench/distributed.ts). One thread per rank. Prints two JSON lines.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 NODE_NO_WARNINGS=1
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mpicc -O2 -o "$tmp/mpi_allreduce" bench/mpi_allreduce.c
mpirun -np 2 --bind-to none "$tmp/mpi_allreduce"
mpirun -np 2 --bind-to none node --import tsx bench/distributed.ts
