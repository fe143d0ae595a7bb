import ArgumentParser
import Foundation
import TesseraEngine
import TesseraPipeline

/// `tessera bench`: times the reference U-Net (forward and train step) and prints ms and GFLOP/s.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark the reference U-Net: inference forward and train step.")

    @Option(name: .customLong("case"), help: "Run one case: unet-w64-b1-512, unet-w32-b4-256 or unet-w16-b1-512.")
    var caseName: String?

    @Option(help: "forward, train, or both.")
    var mode: String = "both"

    @Option(help: "Timed repetitions (median reported).")
    var repeats: Int = 3

    @Flag(help: "Print a JSON array.")
    var json = false

    @Option(help: "Time one 3x3 conv layer instead: IN,OUT,SIZE[,BATCH].")
    var conv: String?

    @Option(help: "Time decode + augmentation of a dataset instead: a folder with images/ and masks/.")
    var loader: String?

    func run() throws {
        if let loader {
            let root = URL(fileURLWithPath: loader)
            let bench = LoaderBenchmark(images: root.appendingPathComponent("images"), masks: root.appendingPathComponent("masks"))
            for workers in Set([1, Parallel.threadCount]).sorted() {
                let r = try bench.run(workers: workers, passes: repeats)
                print(String(format: "loader %d thread(s): %.1f pairs/s (passes: median %.1f, best %.1f; %.1f pairs per CPU-second) "
                             + "(%d pairs: decode + crop 256, flips, rot90, elastic)",
                             workers, r.pairsPerSecond, r.medianPassRate, r.bestPassRate, r.pairsPerCPUSecond, r.pairs))
            }
            return
        }
        if let conv {
            let v = conv.split(separator: ",").compactMap { Int($0) }
            guard v.count == 3 || v.count == 4 else { throw ValidationError("--conv takes IN,OUT,SIZE[,BATCH]") }
            let b = ConvBenchmark(inChannels: v[0], outChannels: v[1], size: v[2], batch: v.count == 4 ? v[3] : 1)
            for r in b.run(repeats: repeats) {
                print(String(format: "conv %@ %-12@ %9.2f ms %8.1f GFLOP/s", conv as NSString, r.pass as NSString, r.ms, r.gflops))
            }
            return
        }
        let cases = UNetBenchmark.cases.filter { caseName == nil || $0.name == caseName }
        guard !cases.isEmpty else { throw ValidationError("unknown case '\(caseName ?? "")'") }
        let modes = mode == "both" ? ["forward", "train"] : [mode]
        guard modes.allSatisfy({ ["forward", "train"].contains($0) }) else { throw ValidationError("mode must be forward, train or both") }
        let bench = UNetBenchmark()
        var results: [UNetBenchmark.Result] = []
        if !json { print("kernel \(GEMM.kernelName), \(Parallel.threadCount) threads") }
        for c in cases {
            for m in modes {
                let r = bench.run(c, mode: m, repeats: repeats)
                results.append(r)
                if !json {
                    print(String(format: "%-18@ %-8@ %9.1f ms %8.1f GFLOP/s  peak RSS %7.0f MB",
                                 r.case as NSString, r.mode as NSString, r.ms, r.gflops, r.peak_rss_mb))
                }
            }
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(results), as: UTF8.self))
        }
    }
}
