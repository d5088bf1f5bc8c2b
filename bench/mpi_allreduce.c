/* Raw MPI_Allreduce (in place, float, sum) of ResNet-18's and ResNet-50's gradient sizes and of
 * one 25 MiB DDP bucket: the floor bench/distributed.ts compares nodegrad's allReduce against.
 * Built and run by bench/distributed.sh: mpirun -np 2 ./mpi_allreduce. Prints one JSON line. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const long sizes[] = {6553600, 11689512, 25557032};
  const char* names[] = {"bucket 25 MiB", "resnet18", "resnet50"};
  if (rank == 0) printf("{\"impl\":\"raw MPI\"");
  for (int s = 0; s < 3; s++) {
    float* buf = malloc(sizeof(float) * sizes[s]);
    for (long i = 0; i < sizes[s]; i++) buf[i] = 1.0f;
    double t[10];
    for (int k = 0; k < 13; k++) {
      MPI_Barrier(MPI_COMM_WORLD);
      double t0 = MPI_Wtime();
      MPI_Allreduce(MPI_IN_PLACE, buf, (int)sizes[s], MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      if (k >= 3) t[k - 3] = MPI_Wtime() - t0;
    }
    qsort(t, 10, sizeof(double), cmp);
    if (rank == 0) printf(",\"%s\":%.3f", names[s], 1e3 * (t[4] + t[5]) / 2);
    free(buf);
  }
  if (rank == 0) printf("}\n");
  MPI_Finalize();
  return 0;
}
