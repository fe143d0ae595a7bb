import Foundation
import TesseraData
import TesseraEngine
import TesseraModels
import TesseraNN
import XCTest

/// LeNet-5 and a ResNet learn the generated shapes set (square, disc, triangle, cross) to >= 95% accuracy on
/// samples they never saw, each in a few seconds.
final class ClassifierTrainingTests: XCTestCase {
    /// Trains `model` with Adam on `trainCount` samples for `epochs` and returns accuracy on 400 held-out ones.
    func trainAndValidate(
        _ model: Module, size: Int, trainCount: Int, epochs: Int, batch: Int, learningRate: Float,
        seed: UInt64
    ) -> Double {
        // Normalised as the loader normalises images: about zero mean and unit spread.
        func normalised(_ x: Tensor) -> Tensor { (x - 0.4) * (1 / 0.3) }
        let train = ShapeSample.batch(size: size, seed: seed, range: 0..<trainCount)
        let val = ShapeSample.batch(size: size, seed: seed, range: 1_000_000..<1_000_400)
        let pixels = normalised(train.images).scalars, labels = train.labels.scalars, plane = size * size
        let optimizer = Adam(model.parameters, learningRate: learningRate)
        let steps = trainCount / batch
        var order = Array(0..<trainCount)
        var g = RandomGenerator(seed: seed)
        let started = Date()
        for epoch in 0..<epochs {
            model.train()
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, g.nextInt(i + 1)) }
            for s in 0..<steps {
                let idx = Array(order[(s * batch)..<((s + 1) * batch)])
                let x = Tensor(idx.flatMap { pixels[($0 * plane)..<(($0 + 1) * plane)] }, shape: [batch, 1, size, size])
                let y = Tensor(idx.map { labels[$0] }, shape: [batch])
                optimizer.zeroGrad()
                Functional.crossEntropy(model(x), target: y).backward()
                optimizer.step()
            }
            optimizer.learningRate *= 0.5 + 0.5 * Float(epochs - epoch - 1) / Float(epochs)
        }
        model.eval()
        let predicted = withNoGrad { model(normalised(val.images)) }.argmax(axis: 1).scalars
        let correct = zip(predicted, val.labels.scalars).filter { $0 == $1 }.count
        let accuracy = Double(correct) / Double(val.labels.count)
        print(
            "\(type(of: model)): validation accuracy \(accuracy) after \(epochs) epochs of \(trainCount) "
                + "(\(String(format: "%.1f", Date().timeIntervalSince(started))) s)")
        return accuracy
    }

    func testLeNet5LearnsShapes() {
        var g = RandomGenerator(seed: 1)
        let model = LeNet5(classes: 4, generator: &g)
        let accuracy = trainAndValidate(
            model, size: 32, trainCount: 4000, epochs: 10, batch: 32, learningRate: 3e-3,
            seed: 11)
        XCTAssertGreaterThanOrEqual(accuracy, 0.95)
    }

    func testResNetLearnsShapes() {
        var g = RandomGenerator(seed: 2)
        let model = ResNet(ResNetConfig(depth: 18, inChannels: 1, classes: 4, width: 16), generator: &g)
        let accuracy = trainAndValidate(
            model, size: 32, trainCount: 3000, epochs: 3, batch: 32, learningRate: 2e-3,
            seed: 12)
        XCTAssertGreaterThanOrEqual(accuracy, 0.95)
    }
}
