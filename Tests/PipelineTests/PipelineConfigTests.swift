import Foundation
import TesseraData
import TesseraNN
import TesseraRun
import TestSupport
import XCTest

/// Pipeline files: the shipped ones are valid, mistakes are reported with file, line, key and a suggestion,
/// overrides land in the same configuration types as the command-line flags.
final class PipelineConfigTests: XCTestCase {
    let root = SharedFixtures.packageRoot

    /// Parses `yaml` with paths resolved from the package root.
    func parse(_ yaml: String, overrides: [String] = [], checkPaths: Bool = true) throws -> PipelineConfig {
        let previous = FileManager.default.currentDirectoryPath
        _ = FileManager.default.changeCurrentDirectoryPath(root.path)
        defer { _ = FileManager.default.changeCurrentDirectoryPath(previous) }
        return try PipelineReader(file: "test.yaml").parse(
            yaml, name: "test", overrides: overrides, checkPaths: checkPaths)
    }

    func error(_ yaml: String, overrides: [String] = []) -> PipelineError? {
        do { _ = try parse(yaml, overrides: overrides); return nil } catch { return error as? PipelineError }
    }

    func testShippedPipelinesAreValid() throws {
        let previous = FileManager.default.currentDirectoryPath
        _ = FileManager.default.changeCurrentDirectoryPath(root.path)
        defer { _ = FileManager.default.changeCurrentDirectoryPath(previous) }
        let quick = try PipelineReader.read(root.appendingPathComponent("pipelines/quickstart.yaml"))
        XCTAssertEqual(quick.training?.classes, 3)
        XCTAssertEqual(quick.training?.width, 16)
        XCTAssertEqual(quick.segment?.inputs, ["samples/test/images", "samples/large/images"])
        XCTAssertEqual(quick.explain?.options.targetClass, "nucleus")
        XCTAssertEqual(quick.training?.classNames, ["background", "cell", "nucleus"])
        // The ISBI recipe's paths need ../shared; its keys are checked either way.
        let isbi = try PipelineReader.read(root.appendingPathComponent("pipelines/isbi2012.yaml"), checkPaths: false)
        XCTAssertEqual(isbi.training?.images, "../shared/data/isbi2012/images")
        XCTAssertEqual(isbi.training?.validationNames, ["slice02", "slice09", "slice13", "slice16"])
        XCTAssertEqual(isbi.training?.testNames, ["slice05", "slice07", "slice11", "slice19"])
        XCTAssertEqual(isbi.segment?.options.instances?.method.rawValue, "membrane")
        let moved = try PipelineReader.read(
            root.appendingPathComponent("pipelines/isbi2012.yaml"),
            overrides: ["data=/elsewhere/isbi"], checkPaths: false)
        XCTAssertEqual(moved.training?.masks, "/elsewhere/isbi/masks")
    }

    func testMistakesNameTheLineTheKeyAndASuggestion() throws {
        let base = "ingest:\n  images: samples/train/images\n  masks: samples/train/masks\n"
        let unknown = error(base + "train:\n  stesp: 10\n")
        XCTAssertEqual(unknown?.line, 5)
        XCTAssertEqual(unknown?.key, "train.stesp")
        XCTAssertTrue(unknown?.description.contains("did you mean 'steps'?") ?? false, "\(String(describing: unknown))")
        XCTAssertTrue(unknown?.description.hasPrefix("test.yaml:5:3:") ?? false)

        let type = error(base + "train:\n  steps: ten\n")
        XCTAssertEqual(type?.line, 5)
        XCTAssertTrue(type?.reason.contains("must be a whole number") ?? false)

        let choice = error(base + "train:\n  optimizer: adma\n")
        XCTAssertTrue(choice?.reason.contains("did you mean 'adam'?") ?? false, "\(String(describing: choice))")

        let missing = error("ingest:\n  images: samples/nowhere\n  masks: samples/train/masks\n")
        XCTAssertEqual(missing?.line, 2)
        XCTAssertTrue(missing?.reason.contains("no such file or folder 'samples/nowhere'") ?? false)

        let section = error("trian:\n  steps: 3\n")
        XCTAssertTrue(section?.description.contains("did you mean 'train'?") ?? false)
        XCTAssertNotNil(error("segment:\n  inputs: samples/test/images\n"), "segment without a model or a train stage")
        XCTAssertNotNil(error(base + "model:\n  arch: unet\n  depth: 12\n"))
        XCTAssertNotNil(error("- just\n- a list\n"))
    }

    /// Every closed set is checked against its enum's cases, with the closest name suggested: a typo in
    /// `best_metric` (once accepted, silently keeping the last checkpoint as best) stops the file.
    func testEveryClosedSetRefusesATypo() throws {
        let base = "ingest:\n  images: samples/train/images\n  masks: samples/train/masks\n"
        let cases: [(String, String)] = [
            ("train:\n  best_metric: mean_dic\n", "mean_dice"), ("train:\n  loss: dice_c\n", "dice_ce"),
            ("train:\n  schedule: cosin\n", "cosine"), ("model:\n  arch: resnet34-une\n", "resnet34-unet"),
            ("ingest:\n  mask_kind: binry\n", "binary")
        ]
        for (yaml, suggestion) in cases {
            let text =
                yaml.hasPrefix("ingest")
                ? "ingest:\n  images: samples/train/images\n  masks: samples/train/masks\n"
                    + yaml.dropFirst("ingest:\n".count) : base + yaml
            let failure = error(text)
            XCTAssertTrue(
                failure?.reason.contains("did you mean '\(suggestion)'?") ?? false,
                "\(yaml): \(String(describing: failure))")
        }
        XCTAssertEqual(try parse(base + "train:\n  best_metric: mean_iou\n").training?.bestMetric, .meanIoU)
    }

    func testOverridesUseTheSameKeysAndChecks() throws {
        let base = "ingest:\n  images: samples/train/images\n  masks: samples/train/masks\ntrain:\n  steps: 10\n"
        let c = try parse(
            base,
            overrides: [
                "train.steps=25", "model.width=8", "train.class_weights=[1, 2, 3]",
                "segment.inputs=[samples/test/images]", "segment.outputs=[overlay]"
            ])
        XCTAssertEqual(c.training?.steps, 25)
        XCTAssertEqual(c.training?.width, 8)
        XCTAssertEqual(c.training?.classWeights, [1, 2, 3])
        XCTAssertEqual(c.segment?.options.outputs, [.overlay, .mask])
        let walked = try parse(
            base,
            overrides: [
                "explain.inputs=[samples]", "explain.recursive=true", "segment.inputs=[samples]",
                "segment.recursive=true"
            ])
        XCTAssertEqual(
            [walked.explain?.recursive, walked.segment?.recursive, walked.segment?.options.recursive],
            [true, true, true])
        XCTAssertEqual(error(base, overrides: ["train.stepz=3"])?.key, "train.stepz")
        XCTAssertNotNil(error(base, overrides: ["train.steps=-3"]))
        XCTAssertNotNil(error(base, overrides: ["nonsense"]))
    }

    /// Objects: `instances` and its rules land in the segment options, are checked, and need `instances`.
    func testInstanceKeys() throws {
        let base =
            "ingest:\n  images: samples/train/images\n  masks: samples/train/masks\nsegment:\n  inputs: [samples]\n"
        let c = try parse(
            base + "  instances: watershed\n  connectivity: 4\n  seeds: probability\n  seed_depth: 0.2\n"
                + "  min_size: 12\n  max_hole: 30\n  exclude_border: true\n")
        let s = try XCTUnwrap(c.segment?.options.instances)
        XCTAssertEqual(
            [s.method.rawValue, s.seeds.rawValue, "\(s.connectivity.rawValue)", "\(s.minSize)", "\(s.maxHole)"],
            ["watershed", "probability", "4", "12", "30"])
        XCTAssertEqual(s.seedDepth, 0.2)
        XCTAssertTrue(s.excludeBorder)
        XCTAssertNil(try parse(base).segment?.options.instances)
        XCTAssertTrue(error(base + "  instances: watershd\n")?.reason.contains("did you mean 'watershed'?") ?? false)
        XCTAssertEqual(error(base + "  connectivity: 6\n  instances: components\n")?.key, "segment.connectivity")
        XCTAssertEqual(error(base + "  min_size: -2\n  instances: components\n")?.key, "segment.min_size")
        XCTAssertTrue(error(base + "  min_size: 5\n")?.reason.contains("instances: components") ?? false)
        XCTAssertEqual(
            try parse(base, overrides: ["segment.instances=components", "segment.min_size=4"]).segment?.options
                .instances?.minSize, 4)
        XCTAssertEqual(
            try parse(base + "explain:\n  inputs: [samples]\n  object: 3\n").explain?.options.object, 3)
        XCTAssertNotNil(error(base + "explain:\n  inputs: [samples]\n  object: 0\n"))
    }

    /// Untrusted files: aliases (the "billion laughs" expansion) and oversized files are refused.
    func testAliasesAndHugeFilesAreRefused() throws {
        let bomb =
            "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b]\n"
        XCTAssertTrue(error(bomb)?.reason.contains("anchors") ?? false)
        // A quote inside a plain scalar does not hide the anchor (a line scanner took `a'` as opening a quote).
        let hidden = "name: x\nx: [a', &a [1,2], *a]\n"
        XCTAssertEqual(error(hidden)?.line, 2)
        XCTAssertTrue(error(hidden)?.reason.contains("anchors") ?? false, "\(String(describing: error(hidden)))")
        // An alias with its anchor in a comment-like or quoted context is still found by the parser: only real
        // anchors count, so '&' inside quotes and comments is accepted.
        let quoted = error("name: 'a &b *c'  # &d *e\n")?.reason ?? ""
        XCTAssertFalse(quoted.contains("anchors") || quoted.contains("aliases"), quoted)
        XCTAssertTrue(error("name: x\ntrain: {steps: *a}\n")?.reason.contains("aliases") ?? false)
        // Node cap: a flow sequence of 20,000 scalars (well under 1 MB) is refused.
        let many = "name: [" + Array(repeating: "1", count: 20_000).joined(separator: ",") + "]\n"
        XCTAssertTrue(error(many)?.reason.contains("YAML nodes") ?? false)
        let big = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-big-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: big) }
        try Data(repeating: 0x23, count: PipelineReader.maxBytes + 1).write(to: big)
        XCTAssertThrowsError(try PipelineReader.read(big)) { XCTAssertTrue("\($0)".contains("larger than")) }
    }
}
