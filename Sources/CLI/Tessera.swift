import ArgumentParser
import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraEngine

/// The `tessera` command: its subcommands, `--version`, and the environment check before anything runs.
public struct Tessera: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract:
            "Image segmentation toolkit: train U-Nets and classifiers, batch-segment and classify folders, explain.",
        discussion: "Environment:\n" + EngineEnvironment.helpText,
        version: TesseraVersion.current,
        subcommands: [
            Run.self, Train.self, Eval.self, Segment.self, Classify.self, Explain.self, Samples.self, Inspect.self,
            Convert.self,
            Import.self, Bench.self
        ]
    )

    public init() {}

    public static func main() {
        let problems = EngineEnvironment.problems()
        if !problems.isEmpty {
            FileHandle.standardError.write(Data(problems.map { "tessera: \($0)\n" }.joined().utf8))
            Foundation.exit(64)  // EX_USAGE
        }
        AllocatorTuning.retainFreedMemory()
        main(nil)
    }
}
