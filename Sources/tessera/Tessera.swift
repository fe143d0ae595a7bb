import ArgumentParser
import TesseraEngine

@main
struct Tessera: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "Image segmentation toolkit: train U-Nets, batch-segment folders, explain with Grad-CAM.",
        subcommands: [Run.self, Train.self, Eval.self, Segment.self, Explain.self, Samples.self, Inspect.self, Convert.self, Bench.self]
    )

    static func main() {
        AllocatorTuning.retainFreedMemory()
        main(nil)
    }
}
