// Row-major GEMM wrappers over cublasSgemm / cublasSgemmStridedBatched; see gemm.cuh.
#include "learner/cuda/gemm.cuh"

#include <string>

#include "learner/cuda/cuda_check.cuh"

namespace freshet::learner::cuda {
namespace {

Status CheckShapes(bool trans_a, bool trans_b, int m, int n, int k, int lda, int ldb, int ldc, int batch) {
  if (m < 0 || n < 0 || k < 0 || batch < 0)
    return InvalidArgumentError("Gemm: negative size m=" + std::to_string(m) + " n=" + std::to_string(n) +
                                " k=" + std::to_string(k) + " batch=" + std::to_string(batch));
  // Row-major: the leading dimension is at least the number of columns stored.
  const int a_cols = trans_a ? m : k, b_cols = trans_b ? k : n;
  if (lda < (a_cols > 0 ? a_cols : 1)) return InvalidArgumentError("Gemm: lda " + std::to_string(lda) + " < " + std::to_string(a_cols));
  if (ldb < (b_cols > 0 ? b_cols : 1)) return InvalidArgumentError("Gemm: ldb " + std::to_string(ldb) + " < " + std::to_string(b_cols));
  if (ldc < (n > 0 ? n : 1)) return InvalidArgumentError("Gemm: ldc " + std::to_string(ldc) + " < " + std::to_string(n));
  return Status::Ok();
}

}  // namespace

Status Gemm(cublasHandle_t handle, bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
            int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  RETURN_IF_ERROR(CheckShapes(trans_a, trans_b, m, n, k, lda, ldb, ldc, 1));
  if (m == 0 || n == 0) return Status::Ok();
  // Cᵀ (n, m) = op(B)ᵀ (n, k) · op(A)ᵀ (k, m), column-major.
  RETURN_IF_CUBLAS_ERROR(cublasSgemm(handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                     n, m, k, &alpha, b, ldb, a, lda, &beta, c, ldc));
  return Status::Ok();
}

Status GemmStridedBatched(cublasHandle_t handle, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                          const float* a, int lda, long long stride_a, const float* b, int ldb, long long stride_b,
                          float beta, float* c, int ldc, long long stride_c, int batch) {
  RETURN_IF_ERROR(CheckShapes(trans_a, trans_b, m, n, k, lda, ldb, ldc, batch));
  if (m == 0 || n == 0 || batch == 0) return Status::Ok();
  RETURN_IF_CUBLAS_ERROR(cublasSgemmStridedBatched(handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                                   trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b, ldb,
                                                   stride_b, a, lda, stride_a, &beta, c, ldc, stride_c, batch));
  return Status::Ok();
}

}  // namespace freshet::learner::cuda
