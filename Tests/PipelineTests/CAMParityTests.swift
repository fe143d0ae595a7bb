import Foundation
import TesseraEngine
import TesseraExplain
import TesseraModels
import TestSupport
import XCTest

/// The CAM family against the real pytorch-grad-cam package: `Fixtures/cam-references.safetensors` (made by
/// `Fixtures/make_cam_references.py` in a throw-away virtualenv) holds each method's heatmap at `layer3` and
/// `layer4` of the shared fixture's ResNet-18 for the predicted class; Tessera's heatmaps equal them within 1e-4 (the maps are
/// scaled to [0, 1], so that is 1e-4 of their scale).
final class CAMParityTests: XCTestCase {
    static let references = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/cam-references.safetensors")

    func testEveryMethodEqualsPytorchGradCAM() throws {
        let folder = try SharedFixtures.require(SharedFixtures.torchFolder)
        let weights = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("resnet18.weights.safetensors"))
        var state: [String: Tensor] = [:]
        for n in weights.names { state[n] = try weights.tensor(n) }
        let config = try XCTUnwrap(ResNetConfig.inferred(fromShapes: state.mapValues(\.shape)))
        var g = RandomGenerator(seed: 0)
        let model = ResNet(config, generator: &g)
        try model.load(state)
        model.eval()
        let reference = try SafeTensorsFile(contentsOf: Self.references)
        let input = try reference.tensor("input")
        assertClose(withNoGrad { model(input) }, try reference.tensor("logits"), "logits")
        let classIndex = try XCTUnwrap(Int(reference.metadata["class"] ?? ""))
        var checked = 0
        for name in reference.names.sorted() where name.hasSuffix(".heatmap") {
            let parts = name.split(separator: ".").map(String.init)
            let method = try XCTUnwrap(CAMMethod(rawValue: parts[0]), "unknown method in \(name)")
            let result = try GradCAM(method: method, layer: parts[1]).explain(
                model: model, input: input, target: .classLogit(classIndex))
            let expected = try reference.tensor(name)
            let actual = Tensor(result.heatmap, shape: [result.height, result.width])
            let worst = zip(actual.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? .infinity
            print("\(name): max |Tessera - pytorch-grad-cam| = \(worst)")
            XCTAssertEqual(actual.shape, expected.shape, name)
            // A zero reference map would let a broken method pass.
            XCTAssertGreaterThan(expected.scalars.max() ?? 0, 0.5, "\(name): the reference map is empty")
            XCTAssertLessThanOrEqual(worst, 1e-4, name)
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 10, "heatmaps checked")

        // Guided Grad-CAM: the guided-backpropagation gradient and its product with the layer4 heatmap, each within
        // 1e-4 of its largest magnitude (plain backpropagation's gradient would not be).
        let guided = try GradCAM(method: .guidedGradcam, layer: "layer4").explain(
            model: model, input: input, target: .classLogit(classIndex))
        let gradient = try reference.tensor("guided.gradient")
        let mine = GradCAM.guidedGradient(model: model, input: input, target: .classLogit(classIndex))
        for (name, actual, expected) in [
            ("guided.gradient", mine, gradient.scalars),
            (
                "guided-gradcam.layer4.product", guided.guided ?? [],
                try reference.tensor("guided-gradcam.layer4.product").scalars
            )
        ] {
            XCTAssertEqual(actual.count, expected.count, name)
            let scale = expected.map(abs).max() ?? 0
            XCTAssertGreaterThan(scale, 0, "\(name): the reference is empty")
            let worst = zip(actual, expected).map { abs($0 - $1) }.max() ?? .infinity
            print("\(name): max |Tessera - pytorch-grad-cam| = \(worst) (scale \(scale))")
            XCTAssertLessThanOrEqual(worst, 1e-4 * scale, name)
        }
    }
}
