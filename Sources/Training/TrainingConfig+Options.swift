import Foundation
import TesseraData
import TesseraModels
import TesseraNN
import TesseraSettings

extension TrainingConfig {
    /// Every option of `tessera train` and the pipeline's `ingest`, `model` and `train` sections, with its range
    /// stated once: `validate()`, the pipeline schema and the command line's help read it.
    public static var table: OptionTable<TrainingConfig> {
        let ingest: [OptionSpec<TrainingConfig>] = [
            .path(
                "images", \.images,
                help:
                    "Folder of images (PNG/JPEG/TIFF); for classification, class sub-folders (ImageFolder) or a path,label CSV."
            ),
            OptionSpec(
                "masks", kind: .path, help: "Folder of masks named like the images (segmentation).",
                read: { $0.masks = try Parse.text($1) }, show: { $0.masks.isEmpty ? nil : $0.masks }),
            .choice(
                "mask_kind", \.maskKind, help: "Mask encoding (auto: 0/255 masks are binary, others label images)."),
            .integer(
                "classes", \.classes, NetworkLimits.classes,
                help: "Number of classes (found from the masks when omitted)."),
            .texts(
                "class_names", \.classNames,
                help: "Class names, comma-separated (kept in checkpoints; default class0, class1, ...)."),
            .integer(
                "channels", \.channels, NetworkLimits.inChannels,
                help:
                    "Input channels of the model (1 gray, 3 RGB): every image is converted to it. Default: the first image's colour channels; a folder mixing layouts is then refused."
            ),
            .number(
                "val_split", \.validationFraction, .openAbove(0, 1), help: "Fraction of pairs held out for validation."),
            .texts(
                "val_names", \.validationNames,
                help: "Validation file stems (default: chosen by the seed and --val-split)."),
            .texts(
                "test_names", \.testNames,
                help: "File stems kept out of training and validation (a test set for segment and eval)."),
            .integer(
                "crop", \.crop, 8...8192,
                help:
                    "Random crop (segmentation, default 256) or input edge (classification; default the model's: lenet5 32, resnetN 224)."
            ),
            .flag("flips", \.flips, help: "Flips and rot90."),
            .flag("elastic", \.elastic, help: "Elastic deformation (U-Net paper)."),
            .flag(
                "intensity", \.usesIntensity,
                help: "Brightness (+-0.1), contrast (0.8-1.2) and gamma (0.7-1.5) jitter, each half the time.")
        ]
        let model: [OptionSpec<TrainingConfig>] = [
            .choice(
                "task", \.task, help: "What the model learns: a mask per image, or a class per image (default segment)."
            ),
            .choice(
                "arch", \.model, flag: "--model",
                help:
                    "Architecture: the plain U-Net or a U-Net on a ResNet encoder (smp's Unet) to segment; LeNet-5 or a torchvision ResNet to classify."
            ),
            .integer("depth", \.depth, NetworkLimits.unetDepth, help: "U-Net down-sampling steps."),
            .integer("width", \.width, NetworkLimits.unetWidth, help: "Channels of the first U-Net level."),
            .flag("batch_norm", \.batchNorm, help: "Batch normalisation in the network."),
            .number("dropout", \.dropout, .openAbove(0, 1), help: "U-Net dropout at the end of the contracting path."),
            .choice("upsampling", \.upsampling, help: "U-Net up-sampling."),
            .choice(
                "padding", \.padding,
                help: "U-Net convolution padding: valid is the paper's (the output is smaller than the crop)."),
            .path(
                "encoder_weights", \.encoderWeights,
                help:
                    "torchvision ResNet weights (safetensors) to start a resnetN-unet encoder or a resnetN classifier from (fc is new when the classes differ)."
            ),
            .flag(
                "freeze_encoder", \.freezesEncoder,
                help: "Train only what --encoder-weights did not give (the U-Net decoder, the classifier's fc).")
        ]
        let train: [OptionSpec<TrainingConfig>] = [
            .integer("steps", \.steps, 1...100_000_000, help: "Training steps."),
            .integer("epochs", \.epochs, 1...1_000_000, help: "Epochs (when --steps is not given; default 50)."),
            .integer("batch", \.batch, 1...4096, help: "Batch size."),
            .number("lr", \.learningRate, .openBelow(0, 10), help: "Learning rate."),
            .choice("optimizer", \.optimizer, help: "Optimizer."),
            .number("momentum", \.momentum, .openAbove(0, 1), help: "SGD momentum."),
            .flag("nesterov", \.nesterov, help: "SGD with Nesterov momentum."),
            .number("weight_decay", \.weightDecay, .closed(0, 1), help: "Weight decay."),
            .choice("schedule", \.schedule.kind, help: "Learning-rate schedule."),
            .integer("warmup", \.schedule.warmupSteps, 0...100_000_000, help: "Linear warm-up steps."),
            .choice("loss", \.loss, help: "Loss (segmentation; classification trains cross-entropy)."),
            .number(
                "label_smoothing", \.labelSmoothing, .openAbove(0, 1),
                help: "Cross-entropy label smoothing (classification), as torch's label_smoothing."),
            .numbers(
                "class_weights", \.classWeights, .closed(0, 1e6),
                help: "Cross-entropy weight per class, comma-separated (e.g. 3,1)."),
            .flag(
                "border_weights", \.usesBorderWeights,
                help: "Weight the loss with the U-Net paper's border map (w0 = 10, sigma = 5 px)."),
            .number("clip_norm", \.clipNorm, .openBelow(0, 1e9), help: "Clip the gradient norm to this value."),
            .integer(
                "val_every", \.validateEvery, 0...100_000_000,
                help: "Validate and checkpoint every N steps (default: every epoch, at least 50 steps apart)."),
            .choice(
                "best_metric", \.bestMetric,
                help: "Validation metric that picks best.safetensors (default mean_dice; accuracy to classify)."),
            .integer("patience", \.patience, 1...100_000, help: "Stop after N validations without improvement."),
            .integer("seed", \.seed, 0...Int.max, help: "Random seed.")
        ]
        return OptionTable(
            stage: "train",
            ingest.map { $0.inSection("ingest") } + model.map { $0.inSection("model") }
                + train.map { $0.inSection("train") })
    }

    /// `intensity` as a flag (absent from older run folders' configurations).
    public var usesIntensity: Bool {
        get { intensity == true }
        set { intensity = newValue ? true : nil }
    }

    /// `freezeEncoder` as a flag.
    public var freezesEncoder: Bool {
        get { freezeEncoder == true }
        set { freezeEncoder = newValue ? true : nil }
    }

    /// `borderWeights` as a flag.
    public var usesBorderWeights: Bool {
        get { borderWeights == true }
        set { borderWeights = newValue ? true : nil }
    }
}
