// `bench_learner --backend cuda [--large]`: the learner benchmark on the CUDA backend
// (issue 8). Counts FLOPs and the minimum bytes moved per training sample from the
// model's shapes, then trains on the GPU and reports samples/s, achieved FLOP/s and
// bytes/s and the GPU memory peak — or, where that cannot run (no GPU, or the CUDA
// trainer not built yet), says why and still ends with one JSON line ("skipped").
// With a GPU it also runs bench/peers/torch_mtl.py --device cuda, eager and with
// --compile, in the same run, so the ratios come from one machine.
#pragma once

#include "schemas/config.pb.h"

namespace freshet::bench {

// The large variant of the reference model: batch 8192, 16 sparse slots × 64
// dims, 16 shared experts per level with a 512-wide hidden layer (PLE otherwise as
// configs/reference.pbtxt). torch_mtl.py --large builds the same model.
void MakeLargeLearnerVariant(FreshetConfig* config);

// Runs the CUDA benchmark; returns the process exit code (0 also when skipped).
int RunCudaLearnerBench(const FreshetConfig& config, double seconds, bool large);

}  // namespace freshet::bench
