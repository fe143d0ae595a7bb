import Foundation
import TesseraData
import TesseraInference
import TesseraTraining
import TestSupport
import XCTest

/// `eval --fgsm` on a segmenter: epsilon 0 scores exactly as the clean evaluation, a real attack lowers the
/// Dice, and an image the network cannot take whole is refused naming the file.
final class SegmentationAttackTests: XCTestCase {
    func testFGSMLowersTheDiceOfASegmenter() throws {
        let samples = SharedFixtures.packageRoot.appendingPathComponent("samples")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-fgsm-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var c = TrainingConfig(
            images: samples.appendingPathComponent("train/images").path,
            masks: samples.appendingPathComponent("train/masks").path)
        c.maskKind = .label
        c.classes = 3
        c.depth = 2
        c.width = 8
        c.crop = 64
        c.steps = 60
        c.batch = 4
        c.learningRate = 3e-3
        let run = TrainRun(config: c, runDirectory: dir)
        run.log = { _ in }
        _ = try run.run()
        var options = EvalOptions()
        options.fgsm = [0, 0.1]
        let checkpoint = dir.appendingPathComponent("last.safetensors")
        let report = try Evaluation.run(
            checkpoint: checkpoint, images: samples.appendingPathComponent("test/images"),
            masks: samples.appendingPathComponent("test/masks"), options: options)
        XCTAssertEqual(report.attacked.map(\.epsilon), [0, 0.1])
        let clean = try XCTUnwrap(report.metrics["mean_dice"])
        XCTAssertEqual(report.attacked[0].metrics["mean_dice"], clean, "epsilon 0 changes nothing")
        let attacked = try XCTUnwrap(report.attacked[1].metrics["mean_dice"])
        print("segmenter mean Dice: clean \(clean), under FGSM eps 0.1 \(attacked)")
        XCTAssertLessThan(attacked, clean - 0.05)
        // An image the network does not take whole (30 px: not a multiple of 4) is refused, naming it.
        let odd = dir.appendingPathComponent("odd")
        for part in ["images", "masks"] {
            try FileManager.default.createDirectory(
                at: odd.appendingPathComponent(part), withIntermediateDirectories: true)
            try ImageCodec.write(
                Image(width: 30, height: 30, channels: 1, samples: .uint8([UInt8](repeating: 1, count: 900))),
                to: odd.appendingPathComponent("\(part)/odd.png"))
        }
        XCTAssertThrowsError(
            try Evaluation.run(
                checkpoint: checkpoint, images: odd.appendingPathComponent("images"),
                masks: odd.appendingPathComponent("masks"), options: options)
        ) {
            XCTAssertTrue("\($0)".contains("odd.png") && "\($0)".contains("30x30"), "\($0)")
        }
    }
}
