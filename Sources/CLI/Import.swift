import ArgumentParser
import Foundation
import TesseraCheckpoint
import TesseraModels

/// `tessera import`: a PyTorch-trained model's state dict as a Tessera checkpoint.
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a PyTorch state dict (safetensors) a checkpoint that segment, eval and explain load.",
        discussion: """
            WEIGHTS is `model.state_dict()` saved with `safetensors.torch.save_file`: segmentation_models_pytorch's \
            Unet(encoder_name="resnetN") for --arch resnetN-unet, or Tessera's own U-Net layout for --arch unet. \
            Missing, unexpected and mis-shaped keys are listed by name; num_batches_tracked is ignored.
            """)

    @Argument(help: "The state dict (.safetensors).") var weights: String
    @Option(help: "Architecture the weights are for.") var arch: Architecture
    @Option(help: "Input channels of the model.") var inChannels: Int
    @Option(help: "Output classes of the model.") var classes: Int
    @Option(
        help: "Class names, comma-separated (default class0, class1, ...).",
        transform: { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } })
    var classNames: [String]?
    @Option(
        help:
            "Normalisation mean per channel on [0, 1] samples, comma-separated (default: ImageNet's for 3 channels, 0.5 otherwise).",
        transform: CommaSeparated.numbers)
    var mean: [Float]?
    @Option(
        help: "Normalisation std per channel, comma-separated (default: ImageNet's for 3 channels, 0.25 otherwise).",
        transform: CommaSeparated.numbers)
    var std: [Float]?
    @Option(help: "Default inference tile in pixels.") var crop = CheckpointInfo.defaultCrop
    @Option(help: "smp's decoder_channels (resnetN-unet).", transform: CommaSeparated.numbers) var decoderChannels:
        [Int]?
    @Option(help: "U-Net depth (unet).") var depth = UNetOptions().depth
    @Option(help: "U-Net width (unet).") var width = UNetOptions().width
    @Option(help: "The checkpoint to write.") var out: String

    func run() throws {
        var job = ModelImport(architecture: arch, inChannels: inChannels, classes: classes)
        job.classNames = classNames
        job.mean = mean
        job.std = std
        job.crop = crop
        if let decoderChannels { job.decoderChannels = decoderChannels }
        job.unetDepth = depth
        job.unetWidth = width
        do {
            try job.run(weights: URL(fileURLWithPath: weights), out: URL(fileURLWithPath: out))
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        print("\(weights) -> \(out): \(arch.rawValue), \(inChannels) input channel(s), \(classes) classes")
    }
}
