import Foundation
import Kernels

// diffusion-bench: speed measurements of the engine (release build:
// `swift build -c release --product diffusion-bench`). Subcommands print one JSON line
// per measurement; see docs/BENCHMARKS.md.

let usage = """
usage: diffusion-bench SUBCOMMAND [options]
  kernels [--only PREFIX] [--repeat N] [--json]
                                           GFLOP/s of each kernel on SD 1.5 shapes
  unet --shapes sd15|sd21|sdxl|ssd1b|vega --size 512 --batch 2 [--weights f16|f32] [--json] [--iterations N] [--warmup N]
       [--profile] [--paced]               sdxl also stands for SDXL-Turbo/Lightning/Hyper (same UNet)
  vae [--shapes sd15|sdxl] --size 512 [--tiny] [--batch N] [--weights f16|f32] [--json] [--iterations N] [--warmup N]
      [--profile] [--paced]                --tiny: TAESD (AutoencoderTiny) instead of AutoencoderKL
  text [--shapes sd15|sd21|sdxl] [--batch N] [--weights f16|f32] [--json] [--iterations N] [--warmup N] [--profile]
       [--paced]                           sd21: OpenCLIP ViT-H (SD 2.x, SD-Turbo); sdxl: both SDXL encoders
                                           (penultimate states, pooled output)
                                           --profile: also one JSON line per operator and shape, most time first
                                           --paced: before each timed evaluation print "# ready" and wait for a
                                           line on stdin, after it print "# done SECONDS" (compare.py --paced)
  image [--shapes sd15|sd21|sdturbo] [--size N] [--steps N] [--sampler NAME] [--guidance G]
        [--guidance-cutoff F] [--cache N] [--versus-exact] [--tiny-vae] [--iterations N] [--warmup N]
        [--tokenizer DIR] [--weights f16|f32] [--save FILE.ppm] [--json]
                                           one whole image on random weights: seconds, images per hour
                                           (--versus-exact: also without the cutoff and cache, same run)
  adherence [--model DIR] [--count N] [--steps N] [--guidance G] [--sampler NAME]
            [--guidance-cutoff F] [--cache N] [--eta E] [--restart N,K,MIN,MAX] [--threads N] [--save DIR]
            [--images DIR | --renders | --reconstruct [--vae DIR]]
                                           caption adherence of the built-in model (JSON), strict evaluator;
                                           --images: score PNGs already made; --renders: the training
                                           renderer's own images; --reconstruct: them through the VAE
  variety [--model DIR] [--captions N] [--seeds N] [--steps N] [--guidance G] [--sampler NAME]
          [--guidance-cutoff F] [--cache N] [--eta E] [--restart N,K,MIN,MAX] [--threads N] [--save DIR] [--renders]
                                           seed variety of object size and centre against the renders (JSON)
Each prints one JSON line: seconds_per_eval (mean wall), gflops (analytic FLOPs / wall),
cpu_seconds_per_eval, peak_rss_mb (getrusage ru_maxrss), ...
environment: DIFFUSION_THREADS=N sets the worker count (default: all active cores);
             DIFFUSION_AVX512=0 keeps to the AVX2 kernels on an AVX-512 CPU
             DIFFUSION_AMX=0 keeps the linear layers off the AMX tiles
             DIFFUSION_SPIN=N: µs a pool thread polls before it sleeps (default 300; 0: at once)
"""

// OpenBLAS's fastest kernels for this CPU, before anything is measured (BLASCore).
BLASCore.reexecWithFasterKernelsIfNeeded()
var arguments = Array(CommandLine.arguments.dropFirst())
guard let command = arguments.first else {
    log(3, usage)
    exit(64)
}
arguments.removeFirst()
do {
    let status: Int32
    switch command {
    case "kernels": status = try runKernelBenchmark(arguments)
    case "unet": status = try runUNetBenchmark(arguments)
    case "vae": status = try runVAEBenchmark(arguments)
    case "text": status = try runTextBenchmark(arguments)
    case "adherence": status = try runAdherenceBenchmark(arguments)
    case "image": status = try runImageBenchmark(arguments)
    case "variety": status = try runVarietyBenchmark(arguments)
    case "-h", "--help", "help":
        printLine(usage)
        status = 0
    default:
        throw BenchError.usage("unknown subcommand '\(command)'\n\(usage)")
    }
    exit(status)
} catch let error as BenchError {
    log(3, "diffusion-bench: \(error)")
    exit(64)
} catch {
    log(3, "diffusion-bench: \(error)")
    exit(70)
}
