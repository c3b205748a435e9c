// Row-major GEMMs through cuBLAS (which is column-major): the CUDA counterpart of the
// Eigen products in learner/cpu/layers.cc and expert_group.cc.
//
//   C (m, n) = alpha · op(A) op(B) + beta · C      op(X) = X or Xᵀ, all row-major
//
// A row-major X with leading dimension ld is, to cuBLAS, the column-major Xᵀ with the
// same ld, so C = op(A)op(B) is computed as Cᵀ = op(B)ᵀ op(A)ᵀ with the operands
// swapped. GemmStridedBatched runs `batch` such products at fixed element strides:
// the n experts of one ExpertGroup layer (expert e = column block e of every matrix,
// stride = block width) are ONE call.
//
// Leading dimensions and sizes are checked on the host (InvalidArgument naming the
// operand); cuBLAS failures become Internal with the call and location.
//
// Thread-safety: as the cuBLAS handle (one thread).
#pragma once

#include <cublas_v2.h>

#include "common/status.h"

namespace freshet::learner::cuda {

// A: (m, k) or (k, m) when trans_a; B: (k, n) or (n, k) when trans_b; C: (m, n).
[[nodiscard]] Status Gemm(cublasHandle_t handle, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                          const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc);

// batch products; operand i starts at a + i·stride_a (likewise b, c).
[[nodiscard]] Status GemmStridedBatched(cublasHandle_t handle, bool trans_a, bool trans_b, int m, int n, int k,
                                        float alpha, const float* a, int lda, long long stride_a, const float* b,
                                        int ldb, long long stride_b, float beta, float* c, int ldc,
                                        long long stride_c, int batch);

}  // namespace freshet::learner::cuda
