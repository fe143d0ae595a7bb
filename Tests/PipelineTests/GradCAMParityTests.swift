import Foundation
import TesseraEngine
import TesseraExplain
import TesseraModels
import TestSupport
import XCTest

/// Grad-CAM against PyTorch: every `<arch>.reference.safetensors` in the torch fixture folder with `gradcam.*`
/// tensors (channel weights, raw map and heatmap per layer) is reproduced from its `<arch>.weights.safetensors`.
final class GradCAMParityTests: XCTestCase {
    func testGradCAMMatchesEveryReferenceFixture() throws {
        let folder = try SharedFixtures.require(SharedFixtures.torchFolder)
        let references = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".reference.safetensors") }.sorted()
        var checked = 0
        for name in references {
            let arch = String(name.dropLast(".reference.safetensors".count))
            let reference = try SafeTensorsFile(contentsOf: folder.appendingPathComponent(name))
            let layers = reference.names.compactMap { n -> String? in
                guard n.hasPrefix("gradcam."), n.hasSuffix(".weights") else { return nil }
                return String(n.dropFirst("gradcam.".count).dropLast(".weights".count))
            }.sorted()
            guard !layers.isEmpty else { continue }
            let weights = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("\(arch).weights.safetensors"))
            var state: [String: Tensor] = [:]
            for n in weights.names { state[n] = try weights.tensor(n) }
            let config = try XCTUnwrap(
                ResNetConfig.inferred(fromShapes: state.mapValues(\.shape)), "\(arch): not a ResNet")
            var g = RandomGenerator(seed: 0)
            let model = ResNet(config, generator: &g)
            try model.load(state)
            let input = try reference.tensor("gradcam.input")
            let classIndex = Int(reference.metadata["gradcam_class"] ?? "") ?? 3
            if reference.names.contains("gradcam.logits") {
                let expected = try reference.tensor("gradcam.logits")
                model.eval()
                if closeness(withNoGrad { model(input) }, expected) != nil, reference.names.contains("train.input") {
                    // The fixture was made after its `train` recipe ran: one train-mode forward of `train.input`
                    // moved the batch-norm running statistics (momentum 0.1) before the eval-mode Grad-CAM. The
                    // weights file holds the statistics from before, so that forward is replayed here.
                    model.train()
                    _ = withNoGrad { model(try! reference.tensor("train.input")) }
                    model.eval()
                    print(
                        "\(arch): gradcam tensors follow the train-mode forward of train.input (running statistics updated)"
                    )
                }
                assertClose(withNoGrad { model(input) }, expected, "\(arch) gradcam.logits")
            }
            for layer in layers {
                let result = try GradCAM(method: .gradcam, layer: layer).explain(
                    model: model, input: input,
                    target: .classLogit(classIndex))
                let label = "\(arch) gradcam.\(layer)"
                assertClose(
                    Tensor(result.weights, shape: [result.weights.count]),
                    try reference.tensor("gradcam.\(layer).weights"), "\(label).weights")
                assertClose(result.cam, try reference.tensor("gradcam.\(layer).cam"), "\(label).cam")
                assertClose(
                    Tensor(result.heatmap, shape: [result.height, result.width]),
                    try reference.tensor("gradcam.\(layer).heatmap"), "\(label).heatmap")
                XCTAssertFalse(result.isZero, label)
                checked += 1
            }
            // The parameters come back as they were: trainable, with no gradient left behind.
            XCTAssertTrue(model.parameters.allSatisfy { $0.requiresGrad && $0.grad == nil })
        }
        XCTAssertGreaterThan(checked, 0, "no reference with gradcam tensors in \(folder.path)")
        print("Grad-CAM parity: \(checked) layer(s) checked")
    }
}
