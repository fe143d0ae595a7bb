import Foundation
import TesseraCheckpoint
import TesseraEngine
import TesseraModels
import TesseraNN
import XCTest

/// Classifier checkpoints (LeNet-5, ResNet): written and read back with the same logits, kept apart from
/// segmentation checkpoints with an error that says which verb to use, and refused when their metadata is wrong.
final class ClassifierCheckpointTests: XCTestCase {
    var temporary: URL!
    override func setUpWithError() throws {
        temporary = FileManager.default.temporaryDirectory.appendingPathComponent("clsck-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: temporary) }

    func info(_ spec: NetworkSpec, crop: Int) -> CheckpointInfo {
        CheckpointInfo(
            network: spec, classNames: (0..<spec.classes).map { "c\($0)" },
            classColors: CheckpointInfo.vocColors(spec.classes), maskKind: "label",
            normalizationMean: [Float](repeating: 0.5, count: spec.inChannels),
            normalizationStd: [Float](repeating: 0.25, count: spec.inChannels), crop: crop)
    }

    func testClassifiersRoundTripWithTheirLogits() throws {
        let cases: [(Architecture, Int, Int)] = [(.lenet5, 1, 32), (.resnet18, 3, 64), (.resnet50, 3, 32)]
        for (arch, channels, size) in cases {
            let spec = try NetworkSpec.make(arch, inChannels: channels, classes: 5)
            XCTAssertEqual(spec.task, .classify)
            XCTAssertEqual(spec.arch, arch.rawValue)
            var g = RandomGenerator(seed: 3)
            let model = try spec.buildClassifier(generator: &g)
            XCTAssertEqual(
                spec.parameterCount, model.parameters.reduce(0) { $0 + $1.count }, "\(arch): parameter count")
            model.eval()
            let url = temporary.appendingPathComponent("\(arch.rawValue).safetensors")
            try Checkpoint.write(model: model, optimizer: nil, info: info(spec, crop: size), to: url)
            let loaded = try Checkpoint.loadClassifier(url)
            XCTAssertEqual(loaded.info.network, spec)
            loaded.model.eval()
            let x = Tensor.randn([2, channels, size, size], generator: &g)
            let expected = withNoGrad { model(x) }, got = withNoGrad { loaded.model(x) }
            XCTAssertEqual(got.shape, [2, 5])
            XCTAssertEqual(got.scalars, expected.scalars, "\(arch)")
            XCTAssertThrowsError(try Checkpoint.load(url)) {
                XCTAssertTrue("\($0)".contains("holds a classifier (\(arch.rawValue))"), "\($0)")
            }
        }
    }

    func testSegmentersAreNotClassifiersAndLeNetTakes32() throws {
        var options = UNetOptions()
        options.width = 4
        options.depth = 2
        let unet = try NetworkSpec.make(Architecture.unet, inChannels: 1, classes: 2, unet: options)
        var g = RandomGenerator(seed: 0)
        let model = try unet.build(generator: &g)
        let url = temporary.appendingPathComponent("unet.safetensors")
        try Checkpoint.write(model: model, optimizer: nil, info: info(unet, crop: 64), to: url)
        XCTAssertThrowsError(try Checkpoint.loadClassifier(url)) {
            XCTAssertTrue("\($0)".contains("not a classifier"), "\($0)")
        }
        let lenet = try NetworkSpec.make(Architecture.lenet5, inChannels: 1, classes: 3)
        XCTAssertThrowsError(try lenet.build(generator: &g)) { XCTAssertTrue("\($0)".contains("is a classifier")) }
        XCTAssertThrowsError(try info(lenet, crop: 64).validate()) {
            XCTAssertTrue("\($0)".contains("info.crop"), "\($0)")
        }
        XCTAssertNoThrow(try info(lenet, crop: 32).validate())
    }
}
