import Foundation
import TesseraEngine
import TesseraModels
import TesseraNN
import TestSupport
import XCTest

/// Every `<arch>.weights.safetensors` + `<arch>.reference.safetensors` pair in the torch fixture folder: the
/// torchvision weights load by name and reproduce the eval logits, the train-mode loss and the listed gradients.
final class ResNetParityTests: XCTestCase {
    func testEveryResNetFixturePairMatchesPyTorch() throws {
        let folder = try SharedFixtures.require(SharedFixtures.torchFolder)
        let pairs = try ResNetFixture.all(in: folder)
        XCTAssertFalse(pairs.isEmpty, "no <arch>.weights/.reference pairs in \(folder.path)")
        for fixture in pairs {
            let model = try fixture.model()
            let ref = fixture.reference
            model.eval()
            let logits = withNoGrad { model(try! ref.tensor("eval.input")) }
            assertClose(logits, try ref.tensor("eval.logits"), "\(fixture.arch) eval.logits")

            model.train()
            let x = try ref.tensor("train.input"), target = try ref.tensor("train.target")
            let loss = Functional.crossEntropy(model(x), target: target)
            assertClose(loss.reshaped([1]), try ref.tensor("train.loss"), "\(fixture.arch) train.loss")
            loss.backward()
            let ours = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.name, $0.tensor.grad!) })
            let checked = fixture.checkedGradients
            XCTAssertFalse(checked.isEmpty)
            let expected = try Dictionary(uniqueKeysWithValues: checked.map { ($0, try ref.tensor("train.grad.\($0)")) })
            func mismatches(_ grads: [String: Tensor]) -> [String] {
                checked.compactMap { name in
                    guard let g = grads[name] else { return "\(name): no gradient" }
                    return closeness(g, expected[name]!, atol: 1e-4, rtol: 1e-3).map { "\(name): \($0)" }
                }
            }
            let direct = mismatches(ours)
            if direct.isEmpty { continue }
            // A ReLU whose input lies within float32 rounding of zero has no well-defined side: PyTorch's float32
            // and an exact (float64) evaluation may disagree, and every gradient upstream of it changes. Such
            // units are listed, and the gradients must match PyTorch once they take PyTorch's side.
            let probe = ReLUDecisions(model: model)
            let plain = probe.gradients(x, target, flips: [])
            for name in checked {
                assertClose(plain.grads[name]!, ours[name]!, atol: 1e-6, rtol: 1e-5, "\(fixture.arch) explicit forward \(name)")
            }
            let ambiguous = plain.ambiguous
            XCTAssertLessThanOrEqual(ambiguous.count, 8, "\(fixture.arch): too many ambiguous ReLUs \(ambiguous)")
            var matched: [ReLUDecisions.Unit]?
            for subset in 1..<(1 << min(ambiguous.count, 8)) {
                let flips = ambiguous.indices.filter { subset & (1 << $0) != 0 }.map { ambiguous[$0] }
                if mismatches(probe.gradients(x, target, flips: Set(flips)).grads).isEmpty { matched = flips; break }
            }
            if let matched {
                print("\(fixture.arch): gradients match PyTorch once these ReLU inputs within rounding of zero take its side: "
                      + matched.map { "\($0.layer)[\($0.index)] = \($0.value)" }.joined(separator: ", "))
            } else {
                XCTFail("\(fixture.arch): gradients differ from PyTorch (ambiguous ReLUs \(ambiguous)):\n" + direct.joined(separator: "\n"))
            }
        }
    }
}

/// Re-runs a ResNet's train-mode forward with explicit ReLU masks, so units whose input is within float32
/// rounding of zero can be listed and decided the other way.
struct ReLUDecisions {
    struct Unit: Hashable, CustomStringConvertible {
        let layer: String, index: Int, value: Float
        var description: String { "\(layer)[\(index)]=\(value)" }
    }
    let model: ResNet
    /// Inputs closer to zero than this are ambiguous (float32 sums of a few thousand products).
    static let band: Float = 1e-5

    func gradients(_ x: Tensor, _ target: Tensor, flips: Set<Unit>) -> (grads: [String: Tensor], ambiguous: [Unit]) {
        for p in model.parameters { p.grad = nil }
        var ambiguous: [Unit] = []
        func relu(_ name: String, _ t: Tensor) -> Tensor {
            let v = t.scalars
            var mask = v.map { $0 > 0 ? Float(1) : 0 }
            for (i, value) in v.enumerated() where abs(value) < Self.band {
                let unit = Unit(layer: name, index: i, value: value)
                ambiguous.append(unit)
                if flips.contains(unit) { mask[i] = 1 - mask[i] }
            }
            return t * Tensor(mask, shape: t.shape)
        }
        var y = relu("bn1", model.bn1(model.conv1(x)))
        y = Functional.maxPool2d(y, kernel: [3, 3], stride: [2, 2], padding: [1])
        for (l, layer) in model.layers.enumerated() {
            for (b, module) in layer.layers.enumerated() {
                let block = module as! ResidualBlock
                var h = y
                for i in block.convs.indices {
                    h = block.norms[i](block.convs[i](h))
                    if i < block.convs.count - 1 { h = relu("layer\(l + 1).\(b).bn\(i + 1)", h) }
                }
                y = relu("layer\(l + 1).\(b)", h + (block.downsample?(y) ?? y))
            }
        }
        let pooled = Functional.globalAvgPool2d(y)
        let logits = model.fc!(pooled.reshaped([pooled.shape[0], pooled.shape[1]]))
        Functional.crossEntropy(logits, target: target).backward()
        let grads = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.name, $0.tensor.grad!) })
        return (grads, ambiguous)
    }
}

/// A torchvision ResNet fixture pair.
struct ResNetFixture {
    let arch: String
    let weights: SafeTensorsFile
    let reference: SafeTensorsFile

    static func all(in folder: URL) throws -> [ResNetFixture] {
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        return try names.filter { $0.hasSuffix(".weights.safetensors") }.sorted().compactMap { name in
            let arch = String(name.dropLast(".weights.safetensors".count))
            let refURL = folder.appendingPathComponent("\(arch).reference.safetensors")
            guard arch.hasPrefix("resnet"), FileManager.default.fileExists(atPath: refURL.path) else { return nil }
            return ResNetFixture(arch: arch, weights: try SafeTensorsFile(contentsOf: folder.appendingPathComponent(name)),
                                 reference: try SafeTensorsFile(contentsOf: refURL))
        }
    }

    /// The ResNet the pair describes, with the file's weights loaded strictly.
    func model() throws -> ResNet {
        let depth = try XCTUnwrap(Int(arch.dropFirst("resnet".count)), "unknown arch \(arch)")
        let classes = Int(reference.metadata["num_classes"] ?? weights.metadata["num_classes"] ?? "") ?? 1000
        var g = RandomGenerator(seed: 0)
        let model = ResNet(ResNetConfig(depth: depth, inChannels: 3, classes: classes), generator: &g)
        var state: [String: Tensor] = [:]
        for name in weights.names { state[name] = try weights.tensor(name) }
        try model.load(state)
        return model
    }

    /// Parameter names listed in the reference's `checked_grads`.
    var checkedGradients: [String] {
        guard let text = reference.metadata["checked_grads"], let data = text.data(using: .utf8),
              let list = try? JSONSerialization.jsonObject(with: data) as? [String] else { return [] }
        return list
    }
}
