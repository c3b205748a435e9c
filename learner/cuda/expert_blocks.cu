// Expert-group layer GEMMs; see expert_blocks.cuh. No kernels of its own: strided
// batched cuBLAS calls plus the bias kernels of linear.cu.
#include "learner/cuda/expert_blocks.cuh"

#include "learner/cuda/gemm.cuh"
#include "learner/cuda/linear.cuh"

namespace freshet::learner::cuda {
namespace {

Status Check(const ExpertBlocks& s) {
  if (s.experts <= 0 || s.batch < 0 || s.w_in <= 0 || s.w_out <= 0 || s.in_ld < s.w_in || s.in_stride < 0)
    return InvalidArgumentError("ExpertBlocks: bad shape (experts " + std::to_string(s.experts) + ", w_in " +
                                std::to_string(s.w_in) + ", w_out " + std::to_string(s.w_out) + ", in_ld " +
                                std::to_string(s.in_ld) + ")");
  return Status::Ok();
}

}  // namespace

Status ExpertBlocksForward(const DeviceContext& ctx, const ExpertBlocks& s, const float* in, const float* w,
                           const float* b, float* out) {
  RETURN_IF_ERROR(Check(s));
  if (s.batch == 0) return Status::Ok();
  const int ld_w = s.experts * s.w_out;
  if (s.in_stride == 0) {
    // Every expert reads the same input: one plain GEMM (B, D)·(D, n·w_out).
    RETURN_IF_ERROR(Gemm(ctx.cublas(), false, false, s.batch, ld_w, s.w_in, 1.f, in, s.in_ld, w, ld_w, 0.f, out, ld_w));
  } else {
    RETURN_IF_ERROR(GemmStridedBatched(ctx.cublas(), false, false, s.batch, s.w_out, s.w_in, 1.f, in, s.in_ld,
                                       s.in_stride, w, ld_w, s.w_out, 0.f, out, ld_w, s.w_out, s.experts));
  }
  if (b != nullptr) RETURN_IF_ERROR(BiasAddForward(out, b, s.batch, ld_w, ctx.compute()));
  return Status::Ok();
}

Status ExpertBlocksBackward(const DeviceContext& ctx, const ExpertBlocks& s, const float* in, const float* dz,
                            const float* w, float* dw, float* db, float* din, float din_beta) {
  RETURN_IF_ERROR(Check(s));
  if (s.batch == 0) return Status::Ok();
  const int ld_w = s.experts * s.w_out;
  cublasHandle_t h = ctx.cublas();
  if (db != nullptr) RETURN_IF_ERROR(ColumnSumAccumulate(dz, s.batch, ld_w, db, ctx.compute()));
  if (s.in_stride == 0) {
    // dW (D, n·w_out) += xᵀ dz;  dx (B, D) = β dx + dz Wᵀ.
    RETURN_IF_ERROR(Gemm(h, true, false, s.w_in, ld_w, s.batch, 1.f, in, s.in_ld, dz, ld_w, 1.f, dw, ld_w));
    if (din != nullptr)
      RETURN_IF_ERROR(Gemm(h, false, true, s.batch, s.w_in, ld_w, 1.f, dz, ld_w, w, ld_w, din_beta, din, s.in_ld));
    return Status::Ok();
  }
  // dW_e (w_in, w_out) += in_eᵀ (w_in, B) · dz_e (B, w_out)
  RETURN_IF_ERROR(GemmStridedBatched(h, true, false, s.w_in, s.w_out, s.batch, 1.f, in, s.in_ld, s.in_stride, dz,
                                     ld_w, s.w_out, 1.f, dw, ld_w, s.w_out, s.experts));
  if (din == nullptr) return Status::Ok();
  // din_e (B, w_in) = β din_e + dz_e (B, w_out) · W_eᵀ (w_out, w_in)
  return GemmStridedBatched(h, false, true, s.batch, s.w_in, s.w_out, 1.f, dz, ld_w, s.w_out, w, ld_w, s.w_out,
                            din_beta, din, s.in_ld, s.in_stride, s.experts);
}

}  // namespace freshet::learner::cuda
