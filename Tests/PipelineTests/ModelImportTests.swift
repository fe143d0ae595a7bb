import Foundation
import TesseraCheckpoint
import TesseraEngine
import TesseraModels
import TestSupport
import XCTest

/// `tessera import`: segmentation_models_pytorch state dicts, saved as PyTorch users save them, become checkpoints
/// that give PyTorch's logits; weights that do not fit are refused with every offending key named.
final class ModelImportTests: XCTestCase {
    /// Every smp case found, with its name and the fixture folder.
    func smpCases() throws -> [(name: String, smp: SmpCase, folder: URL)] {
        let (cases, folder) = try SmpCase.all()
        return cases.map { ($0.name, $0, folder) }
    }

    func importJob(_ smp: SmpCase) throws -> ModelImport {
        let arch = try XCTUnwrap(Architecture(rawValue: smp.encoder_name + "-unet"), smp.encoder_name)
        var job = ModelImport(architecture: arch, inChannels: smp.in_channels, classes: smp.classes)
        job.decoderChannels = smp.decoder_channels
        return job
    }

    var temporary: URL!
    override func setUpWithError() throws {
        temporary = FileManager.default.temporaryDirectory.appendingPathComponent("import-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: temporary) }

    func testEverySmpCaseGivesPyTorchsLogits() throws {
        for (name, smp, folder) in try smpCases() {
            let out = temporary.appendingPathComponent(name + ".tessera.safetensors")
            try importJob(smp).run(weights: folder.appendingPathComponent(smp.weights), out: out)
            let loaded = try Checkpoint.load(out)
            XCTAssertNil(loaded.recipe)
            XCTAssertEqual(try SafeTensorsFile(contentsOf: out).metadata["tessera_version"], TesseraVersion.current)
            XCTAssertEqual(loaded.info.classNames, (0..<smp.classes).map { "class\($0)" })
            let reference = try SafeTensorsFile(contentsOf: folder.appendingPathComponent(smp.reference))
            let input = try reference.tensor("input"), expected = try reference.tensor("logits")
            loaded.model.eval()
            let logits = withNoGrad { loaded.model(input) }
            XCTAssertEqual(logits.shape, expected.shape, name)
            let scale = expected.scalars.map(abs).max() ?? 1
            let worst = zip(logits.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(
                worst / scale, 1e-4, "\(name): max |difference| \(worst) against logits of scale \(scale)")
        }
    }

    func testWeightsThatDoNotFitAreListedByName() throws {
        for (name, smp, folder) in try smpCases() {
            let file = try SafeTensorsFile(contentsOf: folder.appendingPathComponent(smp.weights))
            var tensors = try file.names.map { ($0, try file.tensor($0)) }
            let dropped = try XCTUnwrap(tensors.first { $0.0.hasPrefix("decoder.") && $0.0.hasSuffix(".weight") }?.0)
            tensors.removeAll { $0.0 == dropped }
            tensors.append(("extra.weight", Tensor([1, 2], shape: [2])))
            let reshaped = try XCTUnwrap(tensors.firstIndex { $0.0 == "segmentation_head.0.weight" })
            tensors[reshaped].1 = Tensor(zeros: [1, 1, 1, 1])
            let damaged = temporary.appendingPathComponent("damaged.safetensors")
            try SafeTensorsFile.write(tensors.map { (name: $0.0, tensor: $0.1) }, to: damaged)
            let out = temporary.appendingPathComponent("never.safetensors")
            XCTAssertThrowsError(try importJob(smp).run(weights: damaged, out: out), name) { error in
                let text = "\(error)"
                for key in [dropped, "extra.weight", "segmentation_head.0.weight"] {
                    XCTAssertTrue(text.contains(key), "\(name): '\(key)' not named in \(text)")
                }
            }
            XCTAssertFalse(
                FileManager.default.fileExists(atPath: out.path), "nothing written for weights that do not fit")
            // The wrong class count is a shape mismatch of the head, named as such.
            var wrong = try importJob(smp)
            wrong.classes += 1
            XCTAssertThrowsError(try wrong.run(weights: folder.appendingPathComponent(smp.weights), out: out)) {
                error in
                XCTAssertTrue("\(error)".contains("mis-shaped: segmentation_head.0.weight"), "\(error)")
            }
        }
    }
}
