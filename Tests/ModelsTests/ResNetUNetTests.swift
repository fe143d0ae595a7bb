import Foundation
import TesseraEngine
import TesseraModels
import TesseraNN
import TestSupport
import XCTest

final class ResNetUNetTests: XCTestCase {
    /// smp's key layout and parameter count, and full-resolution logits for any multiple of 32.
    func testSmpLayoutShapesAndParameterCount() {
        var g = RandomGenerator(seed: 3)
        let model = ResNetUNet(ResNetUNetConfig(encoder: 34, inChannels: 3, classes: 1), generator: &g)
        // segmentation_models_pytorch 0.5: sum(p.numel() for p in Unet("resnet34", classes=1).parameters())
        XCTAssertEqual(model.parameters.map(\.count).reduce(0, +), 24_436_369)
        let names = Set(model.stateDict().map(\.name))
        for key in [
            "encoder.conv1.weight", "encoder.layer4.2.conv2.weight", "decoder.blocks.0.conv1.0.weight",
            "decoder.blocks.4.conv2.1.running_var", "segmentation_head.0.weight", "segmentation_head.0.bias"
        ] {
            XCTAssertTrue(names.contains(key), "missing \(key)")
        }
        XCTAssertFalse(names.contains { $0.hasPrefix("encoder.fc") })
        let small = ResNetUNet(ResNetUNetConfig(encoder: 18, inChannels: 2, classes: 3), generator: &g)
        XCTAssertEqual(withNoGrad { small(Tensor.randn([1, 2, 64, 96], generator: &g)) }.shape, [1, 3, 64, 96])
        XCTAssertNil(small.outputSize(forInput: 100))
        XCTAssertEqual(small.inputSize(covering: 100), 128)
    }

    /// torchvision weights load into the encoder; for a one-channel encoder the first convolution is summed over
    /// the colour channels, so a gray image gives exactly what the RGB encoder gives on that image in all three.
    func testEncoderLoadsTorchvisionWeightsAndAdaptsTheFirstConvolution() throws {
        // Whatever torchvision ResNet the fixture folder holds (resnet18 today).
        let folder = try SharedFixtures.require(SharedFixtures.torchFolder)
        let fixture = try XCTUnwrap(try ResNetFixture.all(in: folder).first, "no ResNet weights in \(folder.path)")
        let depth = try XCTUnwrap(Int(fixture.arch.dropFirst("resnet".count)), fixture.arch)
        let file = fixture.weights
        var state: [String: Tensor] = [:]
        for name in file.names { state[name] = try file.tensor(name) }
        var g = RandomGenerator(seed: 4)
        let rgb = ResNetUNet(ResNetUNetConfig(encoder: depth, inChannels: 3, classes: 2), generator: &g)
        let gray = ResNetUNet(ResNetUNetConfig(encoder: depth, inChannels: 1, classes: 2), generator: &g)
        try rgb.loadEncoder(state)
        try gray.loadEncoder(state)
        for (name, tensor) in rgb.encoder.namedParameters() {
            XCTAssertEqual(tensor.scalars, state[name]?.scalars, name)
        }
        rgb.eval()
        gray.eval()
        let x = Tensor.randn([1, 1, 64, 64], generator: &g)
        let a = withNoGrad { gray.encoder.features(x).last! }.scalars
        let b = withNoGrad { rgb.encoder.features(Tensor.concat([x, x, x], axis: 1)).last! }.scalars
        for i in a.indices { XCTAssertEqual(a[i], b[i], accuracy: 1e-4 + 1e-4 * Swift.abs(b[i])) }
    }
}
