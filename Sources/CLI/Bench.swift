import ArgumentParser
import Foundation
import TesseraBench
import TesseraData
import TesseraEngine

/// `tessera bench`: times the reference U-Net (forward and train step) and prints ms and GFLOP/s.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark the reference U-Net (forward and train step), ResNet classifiers and convolution layers.")

    @Option(
        name: .customLong("case"),
        help: ArgumentHelp(
            "Run one case: \(UNetBenchmark.cases.map(\.name).joined(separator: ", ")).",
            discussion: "Without it: the three U-Net cases, forward and train; the ResNet cases run forward only."))
    var caseName: String?

    /// What `--mode` times of each case.
    enum Mode: String, CaseIterable, ExpressibleByArgument { case forward, train, both }

    @Option(help: "What to time of each case.")
    var mode = Mode.both

    @Option(help: "Timed repetitions (median reported).")
    var repeats: Int = 3

    @Flag(help: "Print a JSON array.")
    var json = false

    @Flag(help: "Time each pass of a matrix of convolution layers instead, against the machine's FMA peak.")
    var conv = false

    @Option(
        help: "Time one 3x3 convolution layer instead: IN,OUT,SIZE[,BATCH].",
        transform: { text in
            do { return try ConvBenchmark(parsing: text) } catch { throw ValidationError("\(error)") }
        })
    var layer: ConvBenchmark?

    @Flag(help: "Measure the machine's FMA peak (register-only loop) for each instruction set it supports.")
    var peak = false

    @Option(help: "Time decode + augmentation of a dataset instead: a folder with images/ and masks/.")
    var loader: String?

    @Option(help: "Time finding and measuring the objects of a generated SIZE x SIZE mask instead.")
    var objects: Int?

    @Option(help: "Objects drawn into the --objects mask.") var objectCount = 20000

    @Option(help: "Write the --objects mask and intensity image as float32 .npy files with this prefix.")
    var saveMask: String?

    func run() throws {
        if let objects {
            guard (16...65536).contains(objects), (1...10_000_000).contains(objectCount) else {
                throw ValidationError("--objects takes 16-65536 pixels, --object-count 1-10000000")
            }
            let bench = ObjectsBenchmark(size: objects, count: objectCount)
            if let saveMask {
                let (mask, intensity) = bench.scene()
                try AtomicFile.write(
                    NPYFile.encode(mask.map { Float($0) }, shape: [objects, objects]),
                    to: URL(fileURLWithPath: saveMask + "mask.npy"))
                try AtomicFile.write(
                    NPYFile.encode(intensity, shape: [objects, objects]),
                    to: URL(fileURLWithPath: saveMask + "intensity.npy"))
            }
            let r = bench.run(repeats: repeats)
            if json {
                let fields: [String: Double] = [
                    "objects": Double(r.objects), "whole_seconds": r.whole, "blocks_seconds": r.blocks,
                    "watershed_seconds": r.watershed, "watershed_objects": Double(r.watershedObjects)
                ]
                print(String(decoding: try JSONEncoder.pretty.encode(fields), as: UTF8.self))
            } else {
                print(
                    String(
                        format: "objects %dx%d: %d objects; components + measurements %.3f s whole, %.3f s in "
                            + "2048-pixel blocks; watershed %.3f s (%d objects)",
                        objects, objects, r.objects, r.whole, r.blocks, r.watershed, r.watershedObjects))
            }
            return
        }
        if let loader {
            let root = URL(fileURLWithPath: loader)
            let bench = LoaderBenchmark(
                images: root.appendingPathComponent("images"), masks: root.appendingPathComponent("masks"))
            for workers in Set([1, Parallel.threadCount]).sorted() {
                let r = try bench.run(workers: workers, passes: repeats)
                print(
                    String(
                        format:
                            "loader %d thread(s): %.1f pairs/s (passes: median %.1f, best %.1f; %.1f pairs per CPU-second) "
                            + "(%d pairs: decode + crop 256, flips, rot90, elastic)",
                        workers, r.pairsPerSecond, r.medianPassRate, r.bestPassRate, r.pairsPerCPUSecond, r.pairs))
            }
            return
        }
        if peak {
            for isa in ["scalar", "avx2", "avx512"] {
                guard let p = FMAPeak.best(isa: isa) else { continue }
                print(
                    String(
                        format: "peak %-7@ %7.1f GFLOP/s on one core, %7.1f on %d threads",
                        isa as NSString, p.perCore, p.allCores, p.threads))
            }
            return
        }
        if conv || layer != nil {
            var layers = ConvLayerCase.matrix
            if let layer { layers = [layer.layer] }
            try runConvolutions(layers)
            return
        }
        let cases = UNetBenchmark.cases.filter { caseName == nil ? $0.resNetDepth == 0 : $0.name == caseName }
        guard !cases.isEmpty else { throw ValidationError("unknown case '\(caseName ?? "")'") }
        let bench = UNetBenchmark()
        var results: [UNetBenchmark.Result] = []
        if !json { print("kernel \(GEMM.kernelName), \(Parallel.threadCount) threads") }
        for c in cases {
            for m in mode == .both ? c.modes : [mode.rawValue] where c.modes.contains(m) {
                let r = bench.run(c, mode: m, repeats: repeats)
                results.append(r)
                if !json {
                    print(
                        String(
                            format: "%-18@ %-8@ %9.1f ms %8.1f GFLOP/s  peak RSS %7.0f MB",
                            r.case as NSString, r.mode as NSString, r.ms, r.gflops, r.peak_rss_mb))
                }
            }
        }
        if json {
            print(String(decoding: try JSONEncoder.pretty.encode(results), as: UTF8.self))
        }
    }

    /// Each pass of each layer: GFLOP/s, its share of the measured FMA peak, and its rate against the forward's.
    func runConvolutions(_ layers: [ConvLayerCase]) throws {
        let peak = FMAPeak.best()
        var results: [ConvBenchmark.Result] = []
        if !json {
            print(
                "kernel \(GEMM.kernelName), \(Parallel.threadCount) threads, FMA peak "
                    + String(format: "%.1f GFLOP/s (%.1f on one core)", peak?.allCores ?? 0, peak?.perCore ?? 0))
            print("layer                         pass              ms   GFLOP/s  of peak  of forward")
        }
        for l in layers {
            let passes = ConvBenchmark(l).run(repeats: repeats)
            results += passes
            guard !json else { continue }
            for r in passes {
                print(
                    String(
                        format: "%-29@ %-12@ %9.2f %9.1f %7.0f%% %10.0f%%", l.name as NSString, r.pass as NSString,
                        r.ms, r.gflops, 100 * r.gflops / (peak?.allCores ?? .infinity),
                        100 * r.gflops / passes[0].gflops))
            }
        }
        if json {
            print(String(decoding: try JSONEncoder.pretty.encode(results), as: UTF8.self))
        }
    }
}
