# nodegrad_cuda.node: the 'cuda:N' devices on cuDNN, cuBLAS, NCCL and own kernels (src/cuda).
# Where CUDA comes from, in order:
#   NODEGRAD_CUDA_ROOT  the nvidia/ folder of NVIDIA's pinned wheels (native/scripts/cuda-toolchain.sh
#                       prints it): cu13/{bin,include,lib}, cudnn/, nccl/
#   CUDA_HOME, else /usr/local/cuda: a system CUDA; cuDNN and NCCL from CUDNN_HOME / NCCL_HOME,
#                       else beside it, else the system's library paths
# The CUDA runtime is linked statically, so the addon needs no libcudart at load time; cuDNN,
# cuBLAS and NCCL are shared libraries found through the RUNPATH baked here, or LD_LIBRARY_PATH.
set(NODEGRAD_CUDA_ROOT "$ENV{NODEGRAD_CUDA_ROOT}" CACHE PATH "nvidia/ folder of the CUDA wheels")
if(NODEGRAD_CUDA_ROOT)
  set(CUDA_DIR "${NODEGRAD_CUDA_ROOT}/cu13")
  set(CUDNN_DIR "${NODEGRAD_CUDA_ROOT}/cudnn")
  set(NCCL_DIR "${NODEGRAD_CUDA_ROOT}/nccl")
else()
  if(DEFINED ENV{CUDA_HOME})
    set(CUDA_DIR "$ENV{CUDA_HOME}")
  else()
    set(CUDA_DIR "/usr/local/cuda")
  endif()
  set(CUDNN_DIR "$ENV{CUDNN_HOME}")
  set(NCCL_DIR "$ENV{NCCL_HOME}")
  if(NOT CUDNN_DIR)
    set(CUDNN_DIR "${CUDA_DIR}")
  endif()
  if(NOT NCCL_DIR)
    set(NCCL_DIR "${CUDA_DIR}")
  endif()
endif()
if(NOT EXISTS "${CUDA_DIR}/bin/nvcc")
  message(FATAL_ERROR "no nvcc in ${CUDA_DIR}/bin: run native/scripts/cuda-toolchain.sh and set NODEGRAD_CUDA_ROOT, or CUDA_HOME")
endif()

set(CMAKE_CUDA_COMPILER "${CUDA_DIR}/bin/nvcc")
# sm_80 and sm_90 as SASS (sm_80's also runs on 8.6 and 8.9), and compute_90 PTX that newer
# GPUs compile at load time. "native" would need a GPU at build time.
set(CMAKE_CUDA_ARCHITECTURES "80-real;90-real;90-virtual")
set(CMAKE_CUDA_RUNTIME_LIBRARY Static)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
# No fused multiply-adds, as the host build (-ffp-contract=off): the kernels the 'cuda-emu' build
# checks against 'ts' keep those bits on the GPU (Adam's moments, batch norm's scale and shift).
set(CMAKE_CUDA_FLAGS_RELEASE "-O3 --fmad=false")
enable_language(CUDA)

# Each library by its file name: the wheels ship only versioned sonames.
function(nodegrad_find_lib var dir)
  find_library(${var} NAMES ${ARGN} HINTS "${dir}/lib" "${dir}/lib64" REQUIRED)
endfunction()
nodegrad_find_lib(CUDNN_LIB "${CUDNN_DIR}" cudnn libcudnn.so.9)
nodegrad_find_lib(CUBLAS_LIB "${CUDA_DIR}" cublas libcublas.so.13 libcublas.so.12)
nodegrad_find_lib(CUBLASLT_LIB "${CUDA_DIR}" cublasLt libcublasLt.so.13 libcublasLt.so.12)
nodegrad_find_lib(NCCL_LIB "${NCCL_DIR}" nccl libnccl.so.2)

file(GLOB CUDA_SOURCES CONFIGURE_DEPENDS src/cuda/*.cc src/cuda/*.cu)
add_library(nodegrad_cuda SHARED ${CUDA_SOURCES} ${CMAKE_JS_SRC})
set_target_properties(nodegrad_cuda PROPERTIES PREFIX "" SUFFIX ".node" OUTPUT_NAME "nodegrad_cuda"
  CUDA_SEPARABLE_COMPILATION OFF)
target_include_directories(nodegrad_cuda SYSTEM PRIVATE "${CUDA_DIR}/include" "${CUDNN_DIR}/include" "${NCCL_DIR}/include")
target_link_libraries(nodegrad_cuda PRIVATE nodegrad_core ${CUDNN_LIB} ${CUBLAS_LIB} ${CUBLASLT_LIB} ${NCCL_LIB}
  ${CMAKE_JS_LIB})
# Warnings are errors in our sources: the host compiler's, and nvcc's own for device code.
target_compile_options(nodegrad_cuda PRIVATE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Werror>
  $<$<COMPILE_LANGUAGE:CUDA>:--extended-lambda --Werror all-warnings -Xcompiler=-Wall,-Wextra,-Werror>)
# Where the libraries were found, so the addon loads without LD_LIBRARY_PATH on the machine that
# built it (a variable set before node starts still wins: it is searched first).
foreach(lib ${CUDNN_LIB} ${CUBLAS_LIB} ${NCCL_LIB})
  get_filename_component(d "${lib}" DIRECTORY)
  list(APPEND CUDA_RPATH "${d}")
endforeach()
list(REMOVE_DUPLICATES CUDA_RPATH)
set_target_properties(nodegrad_cuda PROPERTIES BUILD_RPATH "${CUDA_RPATH}" INSTALL_RPATH "${CUDA_RPATH}")
message(STATUS "nodegrad cuda: nvcc ${CMAKE_CUDA_COMPILER_VERSION} from ${CUDA_DIR}; cuDNN ${CUDNN_LIB}; NCCL ${NCCL_LIB}")
