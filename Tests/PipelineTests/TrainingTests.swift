import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraEngine
import TesseraInference
import TesseraNN
import TesseraTraining
import XCTest

final class TrainingTests: XCTestCase {
    var root: URL!

    /// Six 32x32 gray images with a bright disc on noise, and label masks (1 inside the disc).
    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-train-\(UUID().uuidString)")
        for sub in ["images", "masks"] {
            try FileManager.default.createDirectory(
                at: root.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        var g = RandomGenerator(seed: 42)
        for i in 0..<6 {
            let cx = 8 + g.nextInt(16), cy = 8 + g.nextInt(16), r = 5 + g.nextInt(4)
            var pixels = [UInt8](repeating: 0, count: 32 * 32), labels = pixels
            for y in 0..<32 {
                for x in 0..<32 {
                    let inside = (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r
                    pixels[y * 32 + x] = UInt8(min(255, (inside ? 170 : 60) + g.nextInt(50)))
                    labels[y * 32 + x] = inside ? 1 : 0
                }
            }
            try ImageCodec.write(
                Image(width: 32, height: 32, channels: 1, samples: .uint8(pixels)),
                to: root.appendingPathComponent("images/s\(i).png"))
            try ImageCodec.write(
                Image(width: 32, height: 32, channels: 1, samples: .uint8(labels)),
                to: root.appendingPathComponent("masks/s\(i).png"))
        }
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

    func config() -> TrainingConfig {
        var c = TrainingConfig(
            images: root.appendingPathComponent("images").path, masks: root.appendingPathComponent("masks").path)
        c.depth = 2
        c.width = 4
        c.crop = 24
        c.batch = 2
        c.steps = 6
        c.validateEvery = 1
        c.learningRate = 1e-2
        c.validationFraction = 0.34
        return c
    }

    func weights(_ run: URL) throws -> [String: [Float]] {
        let file = try SafeTensorsFile(contentsOf: run.appendingPathComponent("last.safetensors"))
        return try Dictionary(uniqueKeysWithValues: file.names.map { ($0, try file.tensor($0).scalars) })
    }

    func trainer(_ name: String, _ c: TrainingConfig) -> TrainRun {
        let t = TrainRun(config: c, runDirectory: root.appendingPathComponent(name))
        t.log = { _ in }
        return t
    }

    func testRunFolderDeterminismAndResumeEqualsAnUninterruptedRun() throws {
        let summary = try trainer("a", config()).run()
        XCTAssertEqual(summary.steps, 6)
        let a = root.appendingPathComponent("a")
        for f in ["config.json", "last.safetensors", "best.safetensors", "metrics.jsonl", "metrics.csv"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: a.appendingPathComponent(f).path), f)
        }
        let rows = try String(contentsOf: a.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(
            separator: "\n")
        XCTAssertEqual(rows.count, 6)
        XCTAssertEqual(
            try String(contentsOf: a.appendingPathComponent("metrics.csv"), encoding: .utf8).split(separator: "\n")
                .count, 7)
        let saved = try TrainRun.savedConfig(in: a)
        XCTAssertEqual(saved.classes, 2, "label masks with ids 0 and 1")
        XCTAssertEqual(saved.validationNames.count, 2)

        _ = try trainer("b", config()).run()
        XCTAssertEqual(
            try weights(a), try weights(root.appendingPathComponent("b")), "same seed and data: identical weights")

        let stopped = trainer("c", config())
        stopped.stopAfterSteps = 4
        XCTAssertEqual(try stopped.run().steps, 4)
        let c = root.appendingPathComponent("c")
        let resumed = trainer("c", try TrainRun.savedConfig(in: c))
        XCTAssertEqual(try resumed.run().steps, 6)
        XCTAssertEqual(
            try weights(a), try weights(c), "stopped after 4 steps and resumed: identical to the uninterrupted run")
        XCTAssertEqual(
            try String(contentsOf: c.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
                .count, 6)

        var other = config()
        other.seed = 1
        _ = try trainer("d", other).run()
        XCTAssertNotEqual(
            try weights(a), try weights(root.appendingPathComponent("d")), "another seed trains differently")
    }

    /// Stopping between validations keeps the steps done; the resumed run ends with the uninterrupted run's weights.
    func testStoppingBetweenValidationsWritesACheckpoint() throws {
        var c = config()
        c.validateEvery = 3
        _ = try trainer("whole", c).run()
        let stopped = trainer("part", c)
        stopped.stopAfterSteps = 2
        XCTAssertEqual(try stopped.run().steps, 2)
        let part = root.appendingPathComponent("part")
        let info = try Checkpoint.read(part.appendingPathComponent("last.safetensors")).info
        XCTAssertEqual(info.step, 2, "the two steps before the first validation are kept")
        XCTAssertEqual(try trainer("part", c).run().steps, 6)
        XCTAssertEqual(try weights(part), try weights(root.appendingPathComponent("whole")))
    }

    /// best.safetensors written after last.safetensors (a kill between the two) keeps its place: a resumed run
    /// that validates worse models does not replace it. Simulated by a best checkpoint scoring a perfect 1.0.
    func testAResumedRunNeverReplacesABetterBest() throws {
        let stopped = trainer("r", config())
        stopped.stopAfterSteps = 3
        _ = try stopped.run()
        let run = root.appendingPathComponent("r"), best = run.appendingPathComponent("best.safetensors")
        let file = try SafeTensorsFile(contentsOf: best)
        var info = try Checkpoint.read(best).info
        info.metrics["mean_dice"] = 1.0
        let tensors = try file.names.map { (name: $0, tensor: try file.tensor($0)) }
        var metadata = file.metadata
        metadata["info"] = String(decoding: try JSONEncoder().encode(info), as: UTF8.self)
        try SafeTensorsFile.write(tensors, metadata: metadata, to: best)
        _ = try trainer("r", config()).run()
        XCTAssertEqual(
            try Checkpoint.read(best).info.metrics["mean_dice"], 1.0, "a worse model replaced best.safetensors")
    }

    /// A run folder resumes only under the settings it was started with (more steps are allowed).
    func testResumingUnderOtherSettingsIsRefusedNamingThem() throws {
        let stopped = trainer("s", config())
        stopped.stopAfterSteps = 2
        _ = try stopped.run()
        var changed = config()
        changed.batch = 3
        changed.learningRate = 0.5
        XCTAssertThrowsError(try trainer("s", changed).run()) {
            let text = "\($0)"
            XCTAssertTrue(text.contains("batch (was 2, now 3)") && text.contains("learningRate"), text)
        }
        var longer = config()
        longer.steps = 8
        XCTAssertEqual(try trainer("s", longer).run().steps, 8)
    }

    /// `test_names` keeps pairs out of training and validation: the validation split is drawn from the rest, a run
    /// whose other names leave no training pair is refused, and a name that matches no image is an error.
    func testTestNamesAreKeptOutOfTrainingAndValidation() throws {
        var c = config()
        c.testNames = ["s0", "s1", "s2"]
        _ = try trainer("t", c).run()
        let saved = try TrainRun.savedConfig(in: root.appendingPathComponent("t"))
        XCTAssertEqual(saved.validationNames.count, 1, "0.34 of the 3 pairs left")
        XCTAssertTrue(Set(saved.validationNames).isDisjoint(with: c.testNames ?? []))
        c.validationNames = ["s3", "s4", "s5"]
        XCTAssertThrowsError(try trainer("u", c).run()) {
            XCTAssertTrue("\($0)".contains("no training pairs left"), "\($0)")
        }
        c.validationNames = []
        c.testNames = ["s0", "slice99"]
        XCTAssertThrowsError(try trainer("v", c).run()) { XCTAssertTrue("\($0)".contains("'slice99'"), "\($0)") }
    }

    func testEvalReportsTheValidationMetricsOfTheCheckpoint() throws {
        var c = config()
        c.steps = 30
        c.validateEvery = 30
        let summary = try trainer("e", c).run()
        let run = root.appendingPathComponent("e")
        // Evaluate the checkpoint on a folder holding just the validation pairs.
        let valRoot = root.appendingPathComponent("val")
        for sub in ["images", "masks"] {
            try FileManager.default.createDirectory(
                at: valRoot.appendingPathComponent(sub), withIntermediateDirectories: true)
            for name in try TrainRun.savedConfig(in: run).validationNames {
                try FileManager.default.copyItem(
                    at: root.appendingPathComponent("\(sub)/\(name).png"),
                    to: valRoot.appendingPathComponent("\(sub)/\(name).png"))
            }
        }
        let report = try Evaluation.run(
            checkpoint: run.appendingPathComponent("last.safetensors"),
            images: valRoot.appendingPathComponent("images"), masks: valRoot.appendingPathComponent("masks"))
        XCTAssertEqual(report.pairs, 2)
        for key in ["pixel_accuracy", "mean_dice", "dice_1", "mean_iou"] {
            XCTAssertEqual(report.metrics[key]!, summary.last[key]!, accuracy: 1e-12, key)
        }
        // The trivial baseline, predicting background everywhere, scores the background's share of the pixels and a
        // disc Dice of 0; 30 steps must beat both clearly.
        var background = 0, pixels = 0
        for name in try TrainRun.savedConfig(in: run).validationNames {
            guard case .uint8(let ids) = try ImageCodec.decode(root.appendingPathComponent("masks/\(name).png")).samples
            else { continue }
            background += ids.filter { $0 == 0 }.count
            pixels += ids.count
        }
        let baseline = Double(background) / Double(max(1, pixels))
        print(
            String(
                format: "discs after 30 steps: pixel accuracy %.4f (always background %.4f), disc Dice %.4f",
                report.metrics["pixel_accuracy"]!, baseline, report.metrics["dice_1"]!))
        XCTAssertGreaterThan(
            report.metrics["pixel_accuracy"]!, baseline + 0.5 * (1 - baseline),
            "30 steps must halve the always-background error")
        XCTAssertGreaterThan(report.metrics["dice_1"]!, 0.5, "the disc class (always-background: 0)")
    }

    /// A ResNet-encoder U-Net, and a U-Net with valid convolutions, bilinear up-sampling, dropout, BCE and the
    /// border weight map: each trains, resumes to the uninterrupted result (dropout masks included), and its
    /// checkpoint evaluates on whole images (the valid U-Net through mirrored overlap-tile input).
    func testOtherArchitecturesAndOptionsTrainResumeAndEvaluate() throws {
        var resnet = config()
        resnet.model = .resnet18UNet
        resnet.crop = 32
        resnet.learningRate = 1e-3
        var valid = config()
        valid.depth = 1
        valid.padding = .valid
        valid.upsampling = .bilinear
        valid.dropout = 0.2
        valid.loss = .bce
        valid.borderWeights = true
        for (name, base) in [("resnet", resnet), ("valid", valid)] {
            var c = base
            c.steps = 4
            _ = try trainer(name + "-whole", c).run()
            let stopped = trainer(name + "-resumed", c)
            stopped.stopAfterSteps = 2
            _ = try stopped.run()
            let dir = root.appendingPathComponent(name + "-resumed")
            _ = try trainer(name + "-resumed", try TrainRun.savedConfig(in: dir)).run()
            XCTAssertEqual(try weights(root.appendingPathComponent(name + "-whole")), try weights(dir), name)
            let report = try Evaluation.run(
                checkpoint: dir.appendingPathComponent("last.safetensors"),
                images: root.appendingPathComponent("images"),
                masks: root.appendingPathComponent("masks"))
            XCTAssertEqual(report.pairs, 6, name)
            XCTAssertNotNil(report.metrics["mean_dice"], name)
        }
        var wrong = valid
        wrong.crop = 29
        XCTAssertThrowsError(try trainer("wrong", wrong).run()) { error in
            XCTAssertTrue("\(error)".contains("crop 29 does not fit"), "\(error)")
        }
    }
}
