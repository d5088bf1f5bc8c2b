// The 'cpu' device's memory: host buffers from the process-wide pool (cpu/pool.h), behind the
// Allocator interface every device implements.
#pragma once
#include "core/buffer.h"

namespace nodegrad::cpu {

// The one host allocator (never destroyed: finalizers may free buffers at exit).
Allocator& hostAllocator();

}  // namespace nodegrad::cpu
