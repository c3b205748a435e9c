// DeviceContext: streams, the cuBLAS handle and memory sampling; see device.cuh.
#include "learner/cuda/device.cuh"

namespace freshet::learner::cuda {

StatusOr<std::unique_ptr<DeviceContext>> DeviceContext::Create(int device) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    const std::string why = err != cudaSuccess ? cudaGetErrorString(err) : "device count is 0";
    cudaGetLastError();  // clear the sticky error
    return FailedPreconditionError("no CUDA device: " + why);
  }
  if (device < 0 || device >= count)
    return InvalidArgumentError("CUDA device " + std::to_string(device) + " does not exist (" +
                                std::to_string(count) + " present)");
  RETURN_IF_CUDA_ERROR(cudaSetDevice(device));
  std::unique_ptr<DeviceContext> ctx(new DeviceContext());
  cudaDeviceProp prop;
  RETURN_IF_CUDA_ERROR(cudaGetDeviceProperties(&prop, device));
  ctx->name_ = prop.name;
  RETURN_IF_CUDA_ERROR(cudaStreamCreateWithFlags(&ctx->compute_, cudaStreamNonBlocking));
  RETURN_IF_CUDA_ERROR(cudaStreamCreateWithFlags(&ctx->copy_, cudaStreamNonBlocking));
  RETURN_IF_CUDA_ERROR(cudaEventCreateWithFlags(&ctx->copy_done_, cudaEventDisableTiming));
  cublasStatus_t cs = cublasCreate(&ctx->cublas_);
  if (cs != CUBLAS_STATUS_SUCCESS) {
    ctx->cublas_ = nullptr;
    return FailedPreconditionError(std::string("no CUDA device: cublasCreate: ") + cublasGetStatusString(cs));
  }
  RETURN_IF_CUBLAS_ERROR(cublasSetStream(ctx->cublas_, ctx->compute_));
  // Plain FP32 GEMMs: TF32 would change results beyond the parity tolerances.
  RETURN_IF_CUBLAS_ERROR(cublasSetMathMode(ctx->cublas_, CUBLAS_DEFAULT_MATH));
  ctx->SampleMemory();
  return ctx;
}

DeviceContext::~DeviceContext() {
  // Teardown: errors here have no caller to report to.
  if (cublas_ != nullptr) cublasDestroy(cublas_);
  if (copy_done_ != nullptr) cudaEventDestroy(copy_done_);
  if (copy_ != nullptr) cudaStreamDestroy(copy_);
  if (compute_ != nullptr) cudaStreamDestroy(compute_);
}

Status DeviceContext::RecordCopyDone() {
  RETURN_IF_CUDA_ERROR(cudaEventRecord(copy_done_, copy_));
  return Status::Ok();
}

Status DeviceContext::WaitCopyDone() {
  RETURN_IF_CUDA_ERROR(cudaStreamWaitEvent(compute_, copy_done_, 0));
  return Status::Ok();
}

Status DeviceContext::Synchronize() {
  RETURN_IF_CUDA_ERROR(cudaStreamSynchronize(copy_));
  RETURN_IF_CUDA_ERROR(cudaStreamSynchronize(compute_));
  return Status::Ok();
}

StatusOr<size_t> DeviceContext::UsedBytes() const {
  size_t free_bytes = 0, total = 0;
  RETURN_IF_CUDA_ERROR(cudaMemGetInfo(&free_bytes, &total));
  return total - free_bytes;
}

void DeviceContext::SampleMemory() {
  StatusOr<size_t> used = UsedBytes();
  if (used.ok() && *used > peak_used_) peak_used_ = *used;
}

}  // namespace freshet::learner::cuda
