// The NCCL collectives' watchdog: one thread watches the end event of every collective; one still
// pending at its communicator's timeout means another rank never joined it (or died where the
// launcher did not notice). Then nothing would end: the GPU streams wait on the collective, and
// the host on them. The thread names the collective, rank and GPU on stderr, aborts the
// communicator and ends the process with status 1, so that mpirun (under `nodegrad launch`)
// stops the other ranks, as PyTorch's NCCL watchdog tears a process down by default.
#pragma once
#include <cuda_runtime.h>
#include <nccl.h>

#include <string>

namespace nodegrad::cuda {

// Watches `done` (recorded on the communicator's stream after a collective; the watchdog owns it
// and destroys it) until it completes, or ends the process `timeoutMs` from now.
void watchCollective(cudaEvent_t done, int device, ncclComm_t comm, double timeoutMs, std::string what);

// Stops watching `comm`'s collectives, before it is destroyed.
void forgetCollectives(ncclComm_t comm);

}  // namespace nodegrad::cuda
