// Device basics of the CUDA backend: owned device memory, pinned host staging
// memory, and the per-trainer context (compute stream, copy stream, cuBLAS handle).
// Every op launcher in learner/cuda/ takes a DeviceContext and raw device pointers.
//
//   StatusOr<std::unique_ptr<DeviceContext>> ctx = DeviceContext::Create();
//   DeviceBuffer<float> x;
//   RETURN_IF_ERROR(x.Resize(B * D));
//   RETURN_IF_ERROR(x.CopyFromHost(host.data(), B * D, (*ctx)->compute()));
//
// No GPU (CI, this machine): DeviceContext::Create returns FAILED_PRECONDITION with
// the reason, and nothing else in the backend is reached. Sizes are checked on the
// host before any allocation or copy: a copy larger than the buffer is an error.
//
// Thread-safety: none. A context and its buffers belong to one trainer thread.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "learner/cuda/cuda_check.cuh"

namespace freshet::learner::cuda {

// Device memory for `size()` elements of T; freed on destruction. Moves, no copies.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { Free(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), size_(o.size_), capacity_(o.capacity_) {
    o.ptr_ = nullptr;
    o.size_ = o.capacity_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      Free();
      ptr_ = o.ptr_, size_ = o.size_, capacity_ = o.capacity_;
      o.ptr_ = nullptr;
      o.size_ = o.capacity_ = 0;
    }
    return *this;
  }

  // Makes room for n elements. Keeps the allocation when it is big enough (no
  // per-step cudaMalloc); contents are undefined after a growing Resize.
  [[nodiscard]] Status Resize(size_t n) {
    if (n <= capacity_) {
      size_ = n;
      return Status::Ok();
    }
    Free();
    RETURN_IF_CUDA_ERROR(cudaMalloc(reinterpret_cast<void**>(&ptr_), n * sizeof(T)));
    size_ = capacity_ = n;
    return Status::Ok();
  }
  // Resize(n) and set every byte to zero on `stream`.
  [[nodiscard]] Status ResizeZero(size_t n, cudaStream_t stream) {
    RETURN_IF_ERROR(Resize(n));
    return Zero(stream);
  }
  [[nodiscard]] Status Zero(cudaStream_t stream) {
    if (size_ == 0) return Status::Ok();
    RETURN_IF_CUDA_ERROR(cudaMemsetAsync(ptr_, 0, size_ * sizeof(T), stream));
    return Status::Ok();
  }
  // Copies n elements from host memory (pageable or pinned) into the buffer's start.
  [[nodiscard]] Status CopyFromHost(const T* host, size_t n, cudaStream_t stream) {
    if (n > size_) return OutOfRangeError("DeviceBuffer::CopyFromHost: " + std::to_string(n) +
                                          " elements into a buffer of " + std::to_string(size_));
    if (n == 0) return Status::Ok();
    RETURN_IF_CUDA_ERROR(cudaMemcpyAsync(ptr_, host, n * sizeof(T), cudaMemcpyHostToDevice, stream));
    return Status::Ok();
  }
  // Resize(v.size()) then copy; the stream is synchronised when `sync` (pageable
  // host memory must stay alive until the copy is done).
  [[nodiscard]] Status Upload(const std::vector<T>& v, cudaStream_t stream, bool sync = true) {
    RETURN_IF_ERROR(Resize(v.size()));
    RETURN_IF_ERROR(CopyFromHost(v.data(), v.size(), stream));
    if (sync) RETURN_IF_CUDA_ERROR(cudaStreamSynchronize(stream));
    return Status::Ok();
  }
  // Copies the first n elements to host memory and waits for the copy.
  [[nodiscard]] Status CopyToHost(T* host, size_t n, cudaStream_t stream) const {
    if (n > size_) return OutOfRangeError("DeviceBuffer::CopyToHost: " + std::to_string(n) +
                                          " elements from a buffer of " + std::to_string(size_));
    if (n == 0) return Status::Ok();
    RETURN_IF_CUDA_ERROR(cudaMemcpyAsync(host, ptr_, n * sizeof(T), cudaMemcpyDeviceToHost, stream));
    RETURN_IF_CUDA_ERROR(cudaStreamSynchronize(stream));
    return Status::Ok();
  }
  [[nodiscard]] StatusOr<std::vector<T>> Download(cudaStream_t stream) const {
    std::vector<T> out(size_);
    RETURN_IF_ERROR(CopyToHost(out.data(), size_, stream));
    return out;
  }

  T* data() { return ptr_; }
  const T* data() const { return ptr_; }
  size_t size() const { return size_; }
  size_t bytes() const { return capacity_ * sizeof(T); }

 private:
  void Free() {
    if (ptr_ != nullptr) cudaFree(ptr_);  // a failing free at teardown has no one to report to
    ptr_ = nullptr;
    size_ = capacity_ = 0;
  }
  T* ptr_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

// Page-locked host memory: the source of asynchronous H2D batch copies on the copy
// stream (pageable memory would make cudaMemcpyAsync synchronous).
template <typename T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { Free(); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  [[nodiscard]] Status Resize(size_t n) {
    if (n <= capacity_) {
      size_ = n;
      return Status::Ok();
    }
    Free();
    RETURN_IF_CUDA_ERROR(cudaMallocHost(reinterpret_cast<void**>(&ptr_), n * sizeof(T)));
    size_ = capacity_ = n;
    return Status::Ok();
  }
  T* data() { return ptr_; }
  const T* data() const { return ptr_; }
  size_t size() const { return size_; }

 private:
  void Free() {
    if (ptr_ != nullptr) cudaFreeHost(ptr_);
    ptr_ = nullptr;
    size_ = capacity_ = 0;
  }
  T* ptr_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

// Owns the streams and the cuBLAS handle of one trainer. compute() runs kernels and
// GEMMs; copy() runs H2D batch transfers so the next batch's copy overlaps this
// batch's compute (ordered by events, see RecordCopyDone / WaitCopyDone).
class DeviceContext {
 public:
  // FAILED_PRECONDITION "no CUDA device: ..." when no usable GPU/driver is present
  // (cudaGetDeviceCount error or count 0, or cublasCreate failing).
  static StatusOr<std::unique_ptr<DeviceContext>> Create(int device = 0);
  ~DeviceContext();
  DeviceContext(const DeviceContext&) = delete;
  DeviceContext& operator=(const DeviceContext&) = delete;

  cudaStream_t compute() const { return compute_; }
  cudaStream_t copy() const { return copy_; }
  cublasHandle_t cublas() const { return cublas_; }

  // Marks the end of the copies queued so far on copy(); WaitCopyDone makes
  // compute() wait for that point (no host blocking).
  [[nodiscard]] Status RecordCopyDone();
  [[nodiscard]] Status WaitCopyDone();
  [[nodiscard]] Status Synchronize();

  // Bytes in use on the device now, and the largest value seen by SampleMemory().
  [[nodiscard]] StatusOr<size_t> UsedBytes() const;
  void SampleMemory();
  size_t peak_used_bytes() const { return peak_used_; }
  const std::string& device_name() const { return name_; }

 private:
  DeviceContext() = default;
  cudaStream_t compute_ = nullptr;
  cudaStream_t copy_ = nullptr;
  cudaEvent_t copy_done_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  size_t peak_used_ = 0;
  std::string name_;
};

}  // namespace freshet::learner::cuda
